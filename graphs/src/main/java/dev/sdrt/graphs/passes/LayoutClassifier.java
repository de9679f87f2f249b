package dev.sdrt.graphs.passes;

import static dev.sdrt.graphs.passes.Layouts.TO_NCHW;
import static dev.sdrt.graphs.passes.Layouts.TO_NHWC;
import static dev.sdrt.graphs.passes.Layouts.isAct4d;
import static dev.sdrt.graphs.passes.Layouts.isPerm;
import static dev.sdrt.graphs.passes.Layouts.isSingleElement;
import static dev.sdrt.graphs.passes.Layouts.nhwcShape;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Classification for channels-last: the 4-D values that NCHW-only ops (anchors) read and write,
 * the Transposes that only convert between NCHW and NHWC, and the ops or GroupNorm patterns that
 * can compute in either layout (units).
 */
final class LayoutClassifier {
    /** Ops that read and write NCHW only (ONNX has no layout attribute for them). */
    private static final Set<String> ANCHORS = Set.of("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool",
            "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "BatchNormalization", "InstanceNormalization", "LRN",
            "DepthToSpace", "SpaceToDepth");

    /** Ops whose output element depends only on the same element of their (broadcast) inputs. */
    private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
            "Where", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "PRelu", "Mod",
            "Sigmoid", "Relu", "LeakyRelu", "Tanh", "Erf", "Sqrt", "Reciprocal", "Neg", "Exp", "Log", "Abs", "Softplus",
            "Softsign", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Gelu", "Mish", "Cast", "Identity", "Clip",
            "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Not", "IsNaN", "IsInf", "ThresholdedRelu");

    /** Inputs and outputs of anchors. */
    final Set<Value> anchorValues = new LinkedHashSet<>();
    /** Transposes (0,2,3,1) and (0,3,1,2) of 4-D activations. */
    final Set<Node> converters = new LinkedHashSet<>();
    final List<LayoutUnit> units = new ArrayList<>();
    private final Graph graph;

    LayoutClassifier(Graph graph) {
        this.graph = graph;
    }

    void classify() {
        for (Node n : graph.nodes()) {
            if (!n.domain().isEmpty()) {
                continue;
            }
            if (ANCHORS.contains(n.opType()) && isAct4d(n.input(0))) {
                anchorValues.add(n.input(0));
                if (isAct4d(n.output(0))) {
                    anchorValues.add(n.output(0));
                }
            } else if (n.is("Transpose") && isAct4d(n.input(0)) && (isPerm(n, TO_NHWC) || isPerm(n, TO_NCHW))) {
                converters.add(n);
            } else if (n.is("InstanceNormalization")) {
                LayoutUnit gn = GroupNormNhwc.match(n);
                if (gn != null) {
                    units.add(gn);
                }
            } else {
                LayoutUnit u = capable(n);
                if (u != null) {
                    units.add(u);
                }
            }
        }
    }

    /** An elementwise op, Resize or Concat that can compute in NHWC, or null. */
    private LayoutUnit capable(Node n) {
        if (n.outputs().size() != 1 || !isAct4d(n.output(0)) || n.attributes().values().stream().anyMatch(a -> a.hasG())) {
            return null;
        }
        List<Value> acts = new ArrayList<>();
        if (ELEMENTWISE.contains(n.opType())) {
            for (Value v : n.inputs()) {
                if (v == null) {
                    continue;
                }
                if (isAct4d(v)) {
                    acts.add(v);
                } else if (Constants.isConstant(v)) {
                    if (Constants.data(v).rank() > 4) {
                        return null;
                    }
                } else if (!isSingleElement(v) && nhwcShape(v) == null) {
                    return null;
                }
            }
        } else if (n.is("Resize")) {
            if (!isAct4d(n.input(0)) || !resizable(n)) {
                return null;
            }
            acts.add(n.input(0));
        } else if (n.is("Concat")) {
            for (Value v : n.inputs()) {
                if (isAct4d(v)) {
                    acts.add(v);
                } else if (v == null || !Constants.isConstant(v) || Constants.data(v).rank() != 4) {
                    return null;
                }
            }
        } else {
            return null;
        }
        if (acts.isEmpty()) {
            return null;
        }
        acts.add(n.output(0));
        return new LayoutUnit(n.opType(), n, acts);
    }

    private boolean resizable(Node n) {
        String mode = n.attrString("mode", "nearest");
        if (!mode.equals("nearest") && !mode.equals("linear")) {
            return false;
        }
        Value roi = n.input(1);
        boolean cropping = n.attrString("coordinate_transformation_mode", "half_pixel").equals("tf_crop_and_resize");
        if (cropping && roi != null && !(Constants.isConstant(roi) && Constants.data(roi).numElements() == 0)) {
            return false;
        }
        if (n.hasAttr("axes")) {
            return true;
        }
        for (int i = 2; i <= 3; i++) {
            Value v = n.input(i);
            if (v == null || Constants.isConstant(v) && Constants.data(v).numElements() == 0) {
                continue;
            }
            Shape s = v.shape();
            if (s == null || s.rank() != 1 || s.dim(0).value() != 4) {
                return false;
            }
        }
        return true;
    }
}
