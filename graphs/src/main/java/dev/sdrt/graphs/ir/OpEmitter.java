package dev.sdrt.graphs.ir;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;

/**
 * Adds ops to one graph for one opset: what every builder and pass that writes nodes shares.
 * Attributes are set in name order (so saves do not depend on a map's iteration order); node and
 * value names are made unique by the graph; and the operands that moved from attributes to inputs
 * between opsets are written the way the opset wants:
 *
 * <ul>
 *   <li>{@code axes} of Unsqueeze, Squeeze and ReduceSum: an input from opset 13;
 *   <li>{@code axes} of the other Reduce ops: an input from opset 18;
 *   <li>{@code split} of Split: an input from opset 13.
 * </ul>
 *
 * Output types and shapes are left to the caller (or shape inference).
 */
public final class OpEmitter {
    private final Graph graph;
    private final long opset;
    private final BiFunction<String, long[], Value> int64s;

    /** An emitter whose int64 operands (axes, split sizes) are fresh initializers named after their node. */
    public OpEmitter(Graph graph, long opset) {
        this(graph, opset, (node, values) -> graph.constant(node + "_axes", TensorData.vector(values)));
    }

    /**
     * An emitter that makes its int64 vector operands with {@code int64s} (given the node's name and
     * the values): a builder that shares constants between uses passes its cache.
     */
    public OpEmitter(Graph graph, long opset, BiFunction<String, long[], Value> int64s) {
        this.graph = graph;
        this.opset = opset;
        this.int64s = int64s;
    }

    public Graph graph() {
        return graph;
    }

    public long opset() {
        return opset;
    }

    /** Whether {@code opType}'s {@code axes} is an input (else an attribute) at {@code opset}. */
    public static boolean axesIsInput(String opType, long opset) {
        if (opType.equals("Unsqueeze") || opType.equals("Squeeze") || opType.equals("ReduceSum")) {
            return opset >= 13;
        }
        if (opType.startsWith("Reduce")) {
            return opset >= 18;
        }
        throw new IllegalArgumentException(opType + " has no axes operand");
    }

    /** A node with {@code outputs} fresh outputs; {@code attrs} may be null. */
    public Node node(String opType, String name, List<Value> inputs, Map<String, ?> attrs, int outputs) {
        Node node = graph.addNode(opType, name, inputs, outputs);
        if (attrs != null) {
            new TreeMap<>(attrs).forEach(node::setAttr);
        }
        return node;
    }

    /** A one-output node; {@code attrs} may be null. */
    public Value op(String opType, String name, List<Value> inputs, Map<String, ?> attrs) {
        return node(opType, name, inputs, attrs, 1).output(0);
    }

    public Value op(String opType, String name, Value... inputs) {
        return op(opType, name, List.of(inputs), null);
    }

    public Value cast(String name, Value x, DataType to) {
        return op("Cast", name, List.of(x), Map.of("to", (long) to.onnxCode()));
    }

    public Value unsqueeze(String name, Value x, long... axes) {
        return withAxes("Unsqueeze", name, x, axes, null);
    }

    public Value squeeze(String name, Value x, long... axes) {
        return withAxes("Squeeze", name, x, axes, null);
    }

    /** {@code opType} (ReduceSum, ReduceMean, ReduceMax, ReduceL2...) over {@code axes}. */
    public Value reduce(String opType, String name, Value x, boolean keepDims, long... axes) {
        return withAxes(opType, name, x, axes, Map.of("keepdims", keepDims ? 1L : 0L));
    }

    /** Split along {@code axis} into parts of {@code sizes}, written to fresh values. */
    public List<Value> split(String name, Value x, long axis, long... sizes) {
        List<Value> outs = new ArrayList<>(sizes.length);
        for (int i = 0; i < sizes.length; i++) {
            outs.add(graph.newValue((name == null || name.isEmpty() ? "Split" : name) + "_output_" + i));
        }
        split(name, x, axis, sizes, outs);
        return outs;
    }

    /** Split along {@code axis} into parts of {@code sizes}, written to existing unproduced {@code outputs}. */
    public Node split(String name, Value x, long axis, long[] sizes, List<Value> outputs) {
        List<Value> inputs = new ArrayList<>(List.of(x));
        if (opset >= 13) {
            inputs.add(int64s.apply(name, sizes));
        }
        Node split = graph.addNode("Split", "", name, inputs, outputs).setAttr("axis", axis);
        if (opset < 13) {
            split.setAttr("split", sizes);
        }
        return split;
    }

    /**
     * Declares {@code v} graph output {@code name} with this type and shape; through an Identity
     * (node {@code identityName}) when {@code v} is a graph input, an initializer or already an output.
     */
    public Value output(String name, Value v, DataType type, Shape shape, String identityName) {
        Value out = v.isGraphInput() || v.isConstant() || v.isGraphOutput() ? op("Identity", identityName, v) : v;
        graph.rename(out, name);
        out.setTypeAndShape(type, shape);
        graph.addOutput(out);
        return out;
    }

    private Value withAxes(String opType, String name, Value x, long[] axes, Map<String, Object> attrs) {
        Map<String, Object> all = new TreeMap<>();
        if (attrs != null) {
            all.putAll(attrs);
        }
        if (axesIsInput(opType, opset)) {
            return op(opType, name, List.of(x, int64s.apply(name, axes)), all);
        }
        all.put("axes", axes);
        return op(opType, name, List.of(x), all);
    }
}
