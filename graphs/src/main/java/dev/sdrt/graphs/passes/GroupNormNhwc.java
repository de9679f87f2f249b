package dev.sdrt.graphs.passes;

import static dev.sdrt.graphs.passes.Layouts.TO_NHWC;
import static dev.sdrt.graphs.passes.Layouts.allEqual;
import static dev.sdrt.graphs.passes.Layouts.isAct4d;
import static dev.sdrt.graphs.passes.Layouts.permute;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * For channels-last, the GroupNorm pattern exporters write (Reshape [N,G,-1] →
 * InstanceNormalization → Reshape back): its match, and its decomposition into ops that compute on
 * the NHWC layout (InstanceNormalization wants the group axis at 1).
 */
final class GroupNormNhwc {
    private final Graph graph;
    private final OpEmitter ops;
    /** The pass's nodes that read NHWC, and values now written in NHWC; the decomposition adds to both. */
    private final Set<Node> nhwcReaders;
    private final Set<Value> flipped;
    private int added;
    private int removed;

    GroupNormNhwc(Graph graph, OpEmitter ops, Set<Node> nhwcReaders, Set<Value> flipped) {
        this.graph = graph;
        this.ops = ops;
        this.nhwcReaders = nhwcReaders;
        this.flipped = flipped;
    }

    int added() {
        return added;
    }

    int removed() {
        return removed;
    }

    /**
     * The GroupNorm pattern around {@code in}: x [N,C,H,W] → Reshape [N|0, G, -1|…] →
     * InstanceNormalization(scale[G], bias[G]) → Reshape(Shape of a tensor shaped like x, or x's
     * static shape) → y [N,C,H,W]; or null.
     */
    static LayoutUnit match(Node in) {
        Value grouped = in.input(0);
        Node r1 = grouped == null ? null : grouped.producer();
        if (r1 == null || !r1.is("Reshape") || grouped.consumerNodes().size() != 1 || grouped.isGraphOutput()
                || in.outputs().size() != 1) {
            return null;
        }
        Value x = r1.input(0);
        if (!isAct4d(x) || !x.shape().dim(1).isFixed()) {
            return null;
        }
        DataType type = x.type();
        if (type != DataType.FLOAT && type != DataType.FLOAT16 && type != DataType.BFLOAT16) {
            return null;
        }
        long channels = x.shape().dim(1).value();
        if (!Constants.isConstant(r1.input(1))) {
            return null;
        }
        long[] target = Constants.data(r1.input(1)).toLongs();
        if (target.length != 3 || target[1] <= 0 || channels % target[1] != 0) {
            return null;
        }
        long groups = target[1];
        Dim batch = x.shape().dim(0);
        if (!(target[0] == 0 || batch.isFixed() && target[0] == batch.value())) {
            return null;
        }
        long rest = x.shape().dim(2).isFixed() && x.shape().dim(3).isFixed()
                ? channels / groups * x.shape().dim(2).value() * x.shape().dim(3).value() : -2;
        if (!(target[2] == -1 || target[2] == rest)) {
            return null;
        }
        for (int i = 1; i <= 2; i++) {
            Value p = in.input(i);
            if (p == null || !Constants.isConstant(p) || Constants.data(p).numElements() != groups) {
                return null;
            }
        }
        Value normed = in.output(0);
        Node r2 = normed.soleConsumer();
        if (r2 == null || !r2.is("Reshape") || r2.input(0) != normed || normed.consumers().size() != 1) {
            return null;
        }
        Value back = r2.input(1);
        boolean restores;
        if (back.producer() != null && back.producer().is("Shape") && !back.producer().hasAttr("start")
                && !back.producer().hasAttr("end")) {
            Value of = back.producer().input(0);
            restores = of == x || of.shape() != null && of.shape().equals(x.shape()) && x.shape().isFullyFixed();
        } else {
            restores = Constants.isConstant(back) && x.shape().isFullyFixed()
                    && Arrays.equals(Constants.data(back).toLongs(), x.shape().toArray());
        }
        Value y = r2.output(0);
        if (!restores || !isAct4d(y) || !y.shape().equals(x.shape())) {
            return null;
        }
        LayoutUnit u = new LayoutUnit("GroupNorm", in, new ArrayList<>(List.of(x, y)));
        u.reshapeIn = r1;
        u.reshapeOut = r2;
        u.groups = groups;
        u.shape = x.shape();
        return u;
    }

    /**
     * x [N,C,H,W] held as [N,H,W,C] → Reshape [0,-1,G,C/G] → mean and variance over axes 1 and
     * 3 → (x − mean) / sqrt(var + ε) → × scale[G,1] + bias[G,1] when not 1 and 0 → Reshape to
     * the input's shape. The output value keeps its name and readers.
     */
    void decompose(LayoutUnit u) {
        Node in = u.node;
        Value x = u.acts.get(0);
        Value y = u.acts.get(1);
        DataType type = x.type();
        long channels = u.shape.dim(1).value();
        long g = u.groups;
        String base = in.name() + "_nhwc";
        float eps = in.attrFloat("epsilon", 1e-5f);
        float[] scale = Constants.data(in.input(1)).toFloats();
        float[] bias = Constants.data(in.input(2)).toFloats();
        List<Node> old = new ArrayList<>(List.of(u.reshapeIn, in, u.reshapeOut));

        Shape xs = permute(u.shape, TO_NHWC);
        Dim pixels = xs.dim(1).isFixed() && xs.dim(2).isFixed() ? Dim.of(xs.dim(1).value() * xs.dim(2).value()) : Dim.UNKNOWN;
        Shape grouped = Shape.of(List.of(xs.dim(0), pixels, Dim.of(g), Dim.of(channels / g)));
        Shape stats = Shape.of(List.of(xs.dim(0), Dim.of(1), Dim.of(g), Dim.of(1)));

        Value r = node("Reshape", base + "_group", List.of(x, graph.constant(base + "_group_shape",
                TensorData.vector(0, -1, g, channels / g))), type, grouped);
        nhwcReaders.add(r.producer());
        Value mean = reduceMean(base + "_mean", r, type, stats);
        Value d = node("Sub", base + "_center", List.of(r, mean), type, grouped);
        // Pow, not Mul: fp16 keeps Pow and ReduceMean in float32 by default, so the sum of squares cannot overflow
        Value sq = node("Pow", base + "_square", List.of(d, graph.constant(base + "_two",
                TensorData.ofFloatsAs(type, new long[0], new float[] {2f}))), type, grouped);
        Value var = reduceMean(base + "_var", sq, type, stats);
        Value ve = node("Add", base + "_eps", List.of(var, graph.constant(base + "_epsilon",
                TensorData.ofFloatsAs(type, new long[0], new float[] {eps}))), type, stats);
        Value sd = node("Sqrt", base + "_std", List.of(ve), type, stats);
        Value normed = node("Div", base + "_normalize", List.of(d, sd), type, grouped);
        if (!allEqual(scale, 1f)) {
            normed = node("Mul", base + "_scale", List.of(normed, graph.constant(base + "_scale",
                    TensorData.ofFloatsAs(type, new long[] {g, 1}, scale))), type, grouped);
        }
        if (!allEqual(bias, 0f)) {
            normed = node("Add", base + "_bias", List.of(normed, graph.constant(base + "_bias",
                    TensorData.ofFloatsAs(type, new long[] {g, 1}, bias))), type, grouped);
        }
        Value shape = node("Shape", base + "_shape", List.of(x), DataType.INT64, Shape.of(4));
        nhwcReaders.add(shape.producer());

        // the restoring Reshape writes y itself, so its name and readers stay; the rest goes in cleanup
        for (Node n : old) {
            graph.removeNode(n);
            removed++;
        }
        graph.addNode("Reshape", "", base + "_restore", List.of(normed, shape), List.of(y));
        y.setShape(xs);
        added++;
        flipped.add(y);
    }

    private Value reduceMean(String name, Value x, DataType type, Shape shape) {
        added++;
        return ops.reduce("ReduceMean", name, x, true, 1, 3).setTypeAndShape(type, shape);
    }

    private Value node(String op, String name, List<Value> inputs, DataType type, Shape shape) {
        return node(op, name, inputs, type, shape, null);
    }

    private Value node(String op, String name, List<Value> inputs, DataType type, Shape shape, Map<String, Object> attrs) {
        Value out = ops.op(op, name, inputs, attrs);
        out.setTypeAndShape(type, shape);
        added++;
        return out;
    }
}
