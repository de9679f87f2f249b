package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.List;

/**
 * {@code cleanup}: folds the shape arithmetic torch writes, drops nodes that compute nothing, then
 * dead nodes and unused initializers. Exact: every folded value is what ONNX Runtime computes.
 *
 * <pre>
 *   Constant(value=t)                                  →  initializer t
 *   Shape(x) where x has a fixed shape                 →  initializer [d0, d1, ...]
 *   Gather|Unsqueeze|Squeeze|Concat|Cast|Slice|Add|Sub|Mul|Div|Sqrt|Equal|Where|
 *     ConstantOfShape|Expand|Reshape(initializers...)  →  initializer (outputs up to 4096 elements)
 *   Identity(x), Dropout(x) (inference), Cast(x, to=type(x))   →  x
 *   Mul(x, 1), Div(x, 1), Add(x, 0), Sub(x, 0)         →  x   (when the constant does not broadcast x)
 *   nodes no graph output depends on, initializers nothing reads  →  removed
 * </pre>
 *
 * Shape inference runs before each folding round, so a model with fixed input shapes folds its
 * whole Shape → Gather → Concat → Reshape chains; folding a Shape makes the next Reshape's output
 * shape static, which the next round's inference sees. Graph outputs keep their names.
 */
public final class CleanupPass implements GraphPass {
    private static final int MAX_ROUNDS = 8;

    @Override
    public String name() {
        return "cleanup";
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        ConstantFolder folder = new ConstantFolder(model.opset());
        int initializersBefore = graph.initializers().size();
        int constants = 0;
        int folded = 0;
        int noOps = 0;
        for (int round = 0; round < MAX_ROUNDS; round++) {
            inferShapes(model, result, round);
            int changed = 0;
            for (Node node : List.copyOf(graph.nodes())) {
                if (node.outputs().isEmpty()) {
                    continue; // invalid (ONNX nodes have outputs); left for the checker to name
                }
                if (node.is("Constant") && toInitializer(node)) {
                    constants++;
                } else if (fold(node, folder)) {
                    folded++;
                } else if (removeNoOp(node)) {
                    noOps++;
                } else {
                    continue;
                }
                changed++;
                result.affected(node.name());
            }
            if (changed == 0) {
                break;
            }
        }
        int dead = graph.cleanup();
        int removed = constants + folded + noOps + dead;
        result.matched(removed).removed(removed);
        if (removed > 0) {
            result.note(String.format("%d Constant nodes → initializers, %d nodes folded, %d no-op nodes and %d dead nodes"
                    + " removed, %d unused initializers dropped", constants, folded, noOps, dead,
                    initializersBefore + constants + folded - graph.initializers().size()));
        }
        return result.end(graph);
    }

    private static void inferShapes(OnnxModel model, PassResult.Builder result, int round) {
        try {
            OnnxChecker.inferShapes(model);
        } catch (OnnxChecker.OnnxCheckException e) {
            if (round == 0) {
                result.note("shape inference failed, folding with the shapes the model states: " + e.getMessage());
            }
        }
    }

    /** Constant → initializer under the same value name. */
    private static boolean toInitializer(Node node) {
        TensorData data = constantValue(node);
        Value out = node.output(0);
        if (data == null || out.isGraphOutput()) {
            return false;
        }
        node.graph().removeNode(node);
        out.setConstant(data);
        return true;
    }

    private static TensorData constantValue(Node node) {
        if (node.hasAttr("value")) {
            return node.attrTensor("value");
        } else if (node.hasAttr("value_float")) {
            return TensorData.scalar(node.attrFloat("value_float", 0));
        } else if (node.hasAttr("value_int")) {
            return TensorData.scalar(node.attrInt("value_int", 0));
        } else if (node.hasAttr("value_floats")) {
            float[] v = node.attrFloats("value_floats");
            return TensorData.ofFloats(new long[] {v.length}, v);
        } else if (node.hasAttr("value_ints")) {
            return TensorData.vector(node.attrInts("value_ints"));
        }
        return null;
    }

    private static boolean fold(Node node, ConstantFolder folder) {
        Value out = node.outputs().size() == 1 ? node.output(0) : null;
        if (out == null || out.isGraphOutput()) {
            return false;
        }
        TensorData data = folder.fold(node);
        if (data == null) {
            return false;
        }
        node.graph().removeNode(node);
        out.setConstant(data);
        return true;
    }

    /** Identity, inference Dropout, same-type Cast and arithmetic with a neutral constant become their input. */
    private static boolean removeNoOp(Node node) {
        Value x = node.input(0);
        if (x == null || !node.domain().isEmpty()) {
            return false;
        }
        if (node.is("Add") || node.is("Mul")) {
            // commutative: the neutral constant may come first
            Value y = node.input(1);
            float neutral = node.is("Add") ? 0 : 1;
            return isNeutral(x, y, neutral) ? bypass(node, x) : isNeutral(y, x, neutral) && bypass(node, y);
        }
        boolean noOp = switch (node.opType()) {
            case "Identity" -> true;
            case "Dropout" -> isInferenceDropout(node);
            case "Cast" -> x.type() != null && x.type().onnxCode() == node.attrInt("to", -1);
            case "Div" -> isNeutral(x, node.input(1), 1);
            case "Sub" -> isNeutral(x, node.input(1), 0);
            default -> false;
        };
        return noOp && bypass(node, x);
    }

    private static boolean isInferenceDropout(Node node) {
        Value trainingMode = node.input(2);
        boolean training = trainingMode != null && !(trainingMode.isConstant()
                && trainingMode.constant().type() == DataType.BOOL && trainingMode.constant().numElements() == 1
                && trainingMode.constant().toLongs()[0] == 0);
        boolean maskUsed = node.outputs().size() > 1
                && (!node.output(1).consumers().isEmpty() || node.output(1).isGraphOutput());
        return !training && !maskUsed;
    }

    /** True when {@code c} is a constant filled with {@code neutral} whose shape leaves {@code x}'s unchanged. */
    private static boolean isNeutral(Value x, Value c, float neutral) {
        if (c == null || !c.isConstant() || x == null || x.type() != c.type() || x.shape() == null
                || c.constant().numElements() > ConstantFolder.MAX_ELEMENTS) {
            return false;
        }
        Shape xs = x.shape();
        long[] cd = c.constant().dims();
        if (cd.length > xs.rank()) {
            return false;
        }
        for (int i = 1; i <= cd.length; i++) {
            long xd = xs.dim(xs.rank() - i).value();
            if (cd[cd.length - i] != 1 && cd[cd.length - i] != xd) {
                return false;
            }
        }
        DataType t = c.type();
        if (t == DataType.FLOAT || t == DataType.FLOAT16 || t == DataType.BFLOAT16) {
            for (float v : c.constant().toFloats()) {
                if (v != neutral) {
                    return false;
                }
            }
            return true;
        }
        if (t == DataType.INT64 || t == DataType.INT32) {
            for (long v : c.constant().toLongs()) {
                if (v != (long) neutral) {
                    return false;
                }
            }
            return true;
        }
        return false;
    }

    /**
     * Removes {@code node}, handing its first output's readers {@code x}. A graph output keeps its
     * name: {@code x} takes it when {@code x} is an internal value, otherwise the node stays.
     */
    private static boolean bypass(Node node, Value x) {
        Graph graph = node.graph();
        Value out = node.output(0);
        if (out.consumers().stream().anyMatch(c -> c.implicitInputs().contains(out))) {
            return false;
        }
        boolean renameX = out.isGraphOutput();
        if (renameX && (x.producer() == null || x.isGraphOutput())) {
            return false;
        }
        graph.removeNode(node);
        graph.replaceAllUses(out, x);
        if (renameX) {
            String name = out.name();
            graph.removeValue(out);
            graph.rename(x, name);
        }
        return true;
    }
}
