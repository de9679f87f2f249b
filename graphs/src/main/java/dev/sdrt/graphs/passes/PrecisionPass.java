package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Float16;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayDeque;
import java.util.Collections;
import java.util.Deque;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * {@code fp16} / {@code bf16}: float32 weights and computation become half precision, except for
 * the ops kept in float32; Casts stand only where a type changes. The result is strongly typed
 * (every tensor has one type the graph states), as TensorRT's strongly typed networks want.
 *
 * <pre>
 *   x:f32 ── Conv(W:f32) ── InstanceNormalization ── Mul(γ:f32) ── y:f32
 *   becomes (io=fp32, InstanceNormalization kept)
 *   x:f32 ── Cast(f16) ── Conv(W:f16) ── Cast(f32) ── InstanceNormalization ── Cast(f16) ── Mul(γ:f16) ── Cast(f32) ── y:f32
 * </pre>
 *
 * <ul>
 *   <li>Which inputs and outputs of an op share a type comes from the ONNX schema: Add's inputs
 *       and output convert together, Resize's scales stay float, LayerNormalization's mean output
 *       keeps its own type, an op whose schema does not allow the target type (Conv in bf16 before
 *       opset 22, Range, Sin in bf16) stays float32.
 *   <li>Kept in float32: the ops named in {@code keep} (default {@link #DEFAULT_KEEP}), the
 *       timestep embedding (Sin and Cos and the arithmetic feeding them from the graph inputs:
 *       t·freq reaches 1000, where half precision keeps only 0.5 of resolution), nodes of other
 *       domains, nodes with subgraphs and the producers of values their subgraphs read, and the
 *       statistics of a normalization written out in elementwise ops (channels-last's group norm,
 *       torch's LayerNormalization before opset 17): after a kept ReduceMean of a kept Pow (the
 *       variance), the Add ε, Sqrt (or Reciprocal) and the Div (or Mul) that normalizes by it, so
 *       a variance beyond 65504 is not made infinite in half precision.
 *   <li>Initializers, Constant, ConstantOfShape, Cast(to=float) and Random* nodes take the type
 *       their readers want: half when every reader computes in half, float32 otherwise.
 *       Converted weights are clamped to the target's finite range (±65504 for fp16), so no
 *       weight becomes infinite; infinities already there (attention masks) stay.
 *   <li>Graph inputs and outputs keep float32 ({@code io=fp32}, the default) with Casts at the
 *       boundary, or become half too ({@code io=fp16} / {@code io=bf16}).
 *   <li>Cast pairs that cancel (half → float32 → half) and Casts to the type they already have
 *       are removed.
 * </ul>
 */
public final class PrecisionPass implements GraphPass {
    static final Set<String> OPTIONS = Set.of("io", "keep");

    /**
     * Kept in float32 by default: the normalizations, whose statistics (a sum of squares over a
     * whole group or row) overflow half precision once activations pass ~256 (TensorRT warns about
     * fp16 LayerNormalization for this reason), and the Pow and ReduceMean of hand-written RMS
     * norms, where one activation beyond 256 squares to infinity. Softmax runs in half, as
     * TensorRT's fused attention does. ONNX Runtime CPU computes these ops in float32 anyway, so
     * there the set changes no result (the fixtures' fp16 errors are in BENCHMARKS.md).
     */
    public static final Set<String> DEFAULT_KEEP = Set.of("InstanceNormalization", "LayerNormalization",
            "GroupNormalization", "ReduceMean", "Pow");

    /** Ops between the timestep input and Sin/Cos (t · freq, scaled, reshaped). */
    private static final Set<String> TIMESTEP_OPS = Set.of("Mul", "Div", "Add", "Sub", "Neg", "Exp", "Unsqueeze",
            "Squeeze", "Reshape", "Expand", "Cast", "Gather", "Slice", "Concat");
    private static final int TIMESTEP_DEPTH = 8;
    private static final Pattern OP_NAME = Pattern.compile("[A-Za-z][A-Za-z0-9_]*");
    private static final Set<String> RANDOM_OPS = Set.of("RandomNormal", "RandomUniform", "RandomNormalLike",
            "RandomUniformLike", "EyeLike");

    private final DataType target;
    private final boolean convertIo;
    private final Set<String> keep;

    /**
     * @param target FLOAT16 or BFLOAT16
     * @param convertIo whether graph inputs and outputs become {@code target} too
     * @param keep op types computed in float32
     */
    public PrecisionPass(DataType target, boolean convertIo, Set<String> keep) {
        if (target != DataType.FLOAT16 && target != DataType.BFLOAT16) {
            throw new IllegalArgumentException("precision pass converts to FLOAT16 or BFLOAT16, not " + target);
        }
        this.target = target;
        this.convertIo = convertIo;
        this.keep = Set.copyOf(keep);
    }

    public static PrecisionPass fp16() {
        return new PrecisionPass(DataType.FLOAT16, false, DEFAULT_KEEP);
    }

    public static PrecisionPass bf16() {
        return new PrecisionPass(DataType.BFLOAT16, false, DEFAULT_KEEP);
    }

    /** From pipeline options: {@code io=fp32|fp16} (or bf16), {@code keep=Op1|Op2} (empty: keep nothing). */
    static PrecisionPass fromOptions(DataType target, Map<String, String> options) {
        String self = shortName(target);
        String io = options.getOrDefault("io", "fp32");
        if (!io.equals("fp32") && !io.equals(self)) {
            throw new IllegalArgumentException("option io of pass " + self + " must be fp32 or " + self + ", got '" + io + "'");
        }
        Set<String> keep = DEFAULT_KEEP;
        if (options.containsKey("keep")) {
            keep = new LinkedHashSet<>();
            for (String op : options.get("keep").split("\\|")) {
                if (!op.isBlank() && !OP_NAME.matcher(op.trim()).matches()) {
                    throw new IllegalArgumentException("option keep of pass " + self + ": '" + op
                            + "' is not an op type; write keep=InstanceNormalization|LayerNormalization");
                }
                if (!op.isBlank()) {
                    keep.add(op.trim());
                }
            }
        }
        return new PrecisionPass(target, io.equals(self), keep);
    }

    private static String shortName(DataType type) {
        return switch (type) {
            case FLOAT16 -> "fp16";
            case BFLOAT16 -> "bf16";
            default -> "fp32";
        };
    }

    @Override
    public String name() {
        return shortName(target);
    }

    public DataType target() {
        return target;
    }

    public Set<String> keep() {
        return keep;
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        graph.toposort();
        OnnxChecker.inferShapes(model);
        new Conversion(graph, model.opset(), result).run();
        return result.end(graph);
    }

    /** The state of one application: the type chosen for every float32 value and input slot. */
    private final class Conversion {
        private final Graph graph;
        private final long opset;
        private final PassResult.Builder result;
        /** The type each originally float32 value ends up with. */
        private final Map<Value, DataType> types = new IdentityHashMap<>();
        /**
         * The type each input slot of a compute node requires (null: no requirement). In node order:
         * Casts are inserted in its iteration order, and an identity-hash order would differ per run.
         */
        private final Map<Node, DataType[]> required = new LinkedHashMap<>();
        /** Types that readers want for initializers and type-source outputs, decided after the readers. */
        private final Map<Value, Set<DataType>> wants = new IdentityHashMap<>();
        private final Map<Value, Map<DataType, Value>> casts = new IdentityHashMap<>();
        private final Set<Node> fixed = Collections.newSetFromMap(new IdentityHashMap<>());
        private final Map<String, Integer> keptOps = new TreeMap<>();
        private final Map<String, Integer> unsupported = new TreeMap<>();
        private int timestepNodes;
        private int statisticsNodes;
        private int converted;

        Conversion(Graph graph, long opset, PassResult.Builder result) {
            this.graph = graph;
            this.opset = opset;
            this.result = result;
        }

        void run() {
            markFixed();
            for (Value in : graph.inputs()) {
                if (in.type() == DataType.FLOAT) {
                    types.put(in, convertIo ? target : DataType.FLOAT);
                }
            }
            List<Node> sources = graph.nodes().stream().filter(this::isTypeSource).toList();
            for (Node node : graph.nodes()) {
                if (!isTypeSource(node)) {
                    decide(node);
                }
            }
            for (Value out : graph.outputs()) {
                want(out, convertIo ? target : DataType.FLOAT);
            }
            int weights = 0;
            long weightElements = 0;
            for (Value v : graph.initializers()) {
                if (v.type() == DataType.FLOAT && settle(v, true)) {
                    v.setConstant(convert(v.constant()));
                    weights++;
                    weightElements += v.constant().numElements();
                }
            }
            for (Node node : sources) {
                if (settle(node.output(0), allowsTarget(node))) {
                    retype(node);
                    converted++;
                    result.affected(node.name());
                }
            }
            types.forEach((v, t) -> {
                if (!v.isConstant()) {
                    v.setType(t);
                }
            });
            int castsAdded = insertCasts();
            int castsRemoved = removeNoOpCasts();
            graph.toposort();
            result.matched(converted).rewritten(converted).added(castsAdded).removed(castsRemoved);
            result.note(String.format("%d nodes and %d initializers (%d parameters) → %s; %d casts added, %d removed",
                    converted, weights, weightElements, name(), castsAdded, castsRemoved));
            if (!keptOps.isEmpty() || timestepNodes > 0 || statisticsNodes > 0) {
                result.note("kept float32: " + keptOps + (timestepNodes > 0 ? ", timestep embedding: " + timestepNodes + " nodes" : "")
                        + (statisticsNodes > 0 ? ", normalization statistics: " + statisticsNodes + " nodes" : ""));
            }
            if (!unsupported.isEmpty()) {
                result.note("kept float32, ONNX opset " + opset + " has no " + name() + " for: " + unsupported);
            }
        }

        // ---- classification ----

        /** Nodes that compute in float32 whatever the schema allows. */
        private void markFixed() {
            for (Node n : graph.nodes()) {
                boolean subgraph = n.attributes().values().stream().anyMatch(a -> a.hasG() || a.getGraphsCount() > 0);
                if (keep.contains(n.opType()) || !n.domain().isEmpty() || subgraph) {
                    fixed.add(n);
                    keptOps.merge(n.opType(), 1, Integer::sum);
                }
                for (Value v : n.implicitInputs()) {
                    want(v, DataType.FLOAT);
                    if (v.producer() != null && fixed.add(v.producer())) {
                        keptOps.merge(v.producer().opType(), 1, Integer::sum);
                    }
                }
            }
            for (Node n : timestepEmbedding()) {
                if (fixed.add(n)) {
                    timestepNodes++;
                }
            }
            for (Node n : normalizationStatistics()) {
                if (fixed.add(n)) {
                    statisticsNodes++;
                }
            }
        }

        /**
         * After each kept ReduceMean of a kept Pow (a variance): the Add ε, Sqrt and Reciprocal that
         * turn it into a standard deviation, and the Div or Mul that normalizes by it. The normalized
         * result has unit scale, so it is safe in half again.
         */
        private Set<Node> normalizationStatistics() {
            Set<Node> found = Collections.newSetFromMap(new IdentityHashMap<>());
            for (Node mean : graph.nodes()) {
                Node square = mean.inputs().isEmpty() || mean.input(0) == null ? null : mean.input(0).producer();
                if (!mean.is("ReduceMean") || !fixed.contains(mean) || square == null || !square.is("Pow") || !fixed.contains(square)) {
                    continue;
                }
                Deque<Value> work = new ArrayDeque<>(List.of(mean.output(0)));
                while (!work.isEmpty()) {
                    Value statistic = work.pop();
                    for (Node reader : statistic.consumerNodes()) {
                        if (!reader.domain().isEmpty() || found.contains(reader)) {
                            continue;
                        }
                        Node producer = statistic.producer();
                        boolean isStd = producer.is("Sqrt") || producer.is("Reciprocal")
                                || producer.is("Div") && producer.input(0).isConstant();
                        boolean divides = reader.is("Div") && reader.input(1) == statistic;
                        boolean toStd = reader.is("Sqrt") || reader.is("Reciprocal")
                                || divides && reader.input(0).isConstant()
                                || reader.is("Add") && reader.inputs().stream().anyMatch(v -> v != statistic && v != null && v.isConstant());
                        if (toStd) {
                            found.add(reader);
                            work.add(reader.output(0));
                        } else if (isStd && (divides || reader.is("Mul"))) {
                            found.add(reader); // the normalization itself: its output has unit scale
                        }
                    }
                }
            }
            return found;
        }

        /** Sin and Cos, and the elementwise arithmetic feeding them, a few steps back. */
        private Set<Node> timestepEmbedding() {
            Set<Node> found = Collections.newSetFromMap(new IdentityHashMap<>());
            Deque<Node> work = new ArrayDeque<>();
            Map<Node, Integer> depth = new IdentityHashMap<>();
            for (Node n : graph.nodes()) {
                if (n.is("Sin") || n.is("Cos")) {
                    work.add(n);
                    depth.put(n, 0);
                }
            }
            while (!work.isEmpty()) {
                Node n = work.pop();
                if (!found.add(n) || depth.get(n) >= TIMESTEP_DEPTH) {
                    continue;
                }
                for (Value in : n.inputs()) {
                    Node p = in == null ? null : in.producer();
                    if (p != null && p.domain().isEmpty() && TIMESTEP_OPS.contains(p.opType()) && !found.contains(p)) {
                        depth.put(p, depth.get(n) + 1);
                        work.add(p);
                    }
                }
            }
            return found;
        }

        /** Ops whose output type comes from an attribute: they follow their readers. */
        private boolean isTypeSource(Node n) {
            if (!n.domain().isEmpty() || n.outputs().isEmpty() || n.output(0).type() != DataType.FLOAT) {
                return false;
            }
            return switch (n.opType()) {
                case "Cast" -> true;
                case "Constant" -> n.hasAttr("value");
                case "ConstantOfShape" -> true;
                default -> RANDOM_OPS.contains(n.opType())
                        && (n.hasAttr("dtype") || n.opType().equals("RandomNormal") || n.opType().equals("RandomUniform"));
            };
        }

        private boolean allowsTarget(Node source) {
            OpSchemas.Signature sig = OpSchemas.of(source.opType(), opset);
            return sig != null && sig.allows(sig.output(0), target);
        }

        private boolean isFlexible(Value v) {
            return v.isConstant() || v.producer() != null && isTypeSource(v.producer());
        }

        /**
         * Chooses the type of each type parameter of {@code node} that is float32 now: the target
         * for a parameter shared by inputs and outputs of a node that may convert; for a parameter
         * only inputs have (Shape's, Equal's), the type its computed inputs already have.
         */
        private void decide(Node node) {
            OpSchemas.Signature sig = node.domain().isEmpty() ? OpSchemas.of(node.opType(), opset) : null;
            boolean convertible = sig != null && !fixed.contains(node);
            Map<String, DataType> chosen = new HashMap<>();
            DataType[] slots = new DataType[node.inputCount()];
            for (int i = 0; i < node.inputCount(); i++) {
                Value v = node.input(i);
                if (v == null || v.type() != DataType.FLOAT) {
                    continue;
                }
                String param = sig == null ? null : sig.input(i);
                slots[i] = param != null && sig.isTypeParameter(param)
                        ? chosen.computeIfAbsent(param, p -> choose(node, sig, p, convertible))
                        : DataType.FLOAT;
                want(v, slots[i]);
            }
            required.put(node, slots);
            boolean changed = false;
            for (int j = 0; j < node.outputs().size(); j++) {
                Value out = node.output(j);
                if (out.type() != DataType.FLOAT) {
                    continue;
                }
                String param = sig == null ? null : sig.output(j);
                DataType t = param == null ? null : chosen.get(param);
                types.put(out, t == null ? DataType.FLOAT : t);
                changed |= t == target;
            }
            if (changed) {
                converted++;
                result.affected(node.name());
            }
        }

        private DataType choose(Node node, OpSchemas.Signature sig, String param, boolean convertible) {
            boolean sharedWithOutput = false;
            for (int j = 0; j < node.outputs().size(); j++) {
                sharedWithOutput |= param.equals(sig.output(j));
            }
            if (sharedWithOutput) {
                if (convertible && !sig.allows(param, target)) {
                    unsupported.merge(node.opType(), 1, Integer::sum);
                }
                return convertible && sig.allows(param, target) ? target : DataType.FLOAT;
            }
            for (int i = 0; i < node.inputCount(); i++) {
                Value v = node.input(i);
                if (v != null && param.equals(sig.input(i)) && v.type() == DataType.FLOAT && !isFlexible(v)) {
                    DataType t = types.getOrDefault(v, DataType.FLOAT);
                    return sig.allows(param, t) ? t : DataType.FLOAT;
                }
            }
            return DataType.FLOAT;
        }

        private void want(Value v, DataType t) {
            if (isFlexible(v)) {
                wants.computeIfAbsent(v, k -> EnumSet.noneOf(DataType.class)).add(t);
            }
        }

        /** Settles a flexible value: the target when every reader wants it (and it may be), else float32. */
        private boolean settle(Value v, boolean allowed) {
            boolean low = allowed && EnumSet.of(target).equals(wants.get(v));
            types.put(v, low ? target : DataType.FLOAT);
            return low;
        }

        // ---- rewriting ----

        /** Points a type-source node's type attribute at the target. */
        private void retype(Node node) {
            switch (node.opType()) {
                case "Cast" -> node.setAttr("to", (long) target.onnxCode());
                case "Constant" -> node.setAttr("value", convert(node.attrTensor("value")));
                case "ConstantOfShape" -> node.setAttr("value", convert(node.hasAttr("value")
                        ? node.attrTensor("value") : TensorData.ofFloats(new long[] {1}, 0f)));
                default -> node.setAttr("dtype", (long) target.onnxCode());
            }
        }

        /** Float32 data as the target type, values clamped to its finite range; converted when read. */
        private TensorData convert(TensorData data) {
            float max = target == DataType.FLOAT16 ? 65504f : Float16.bfloat16ToFloat((short) 0x7f7f);
            long[] dims = data.dims();
            return TensorData.generated(target, dims, () -> {
                float[] values = data.toFloats();
                for (int i = 0; i < values.length; i++) {
                    if (Float.isFinite(values[i])) {
                        values[i] = Math.max(-max, Math.min(max, values[i]));
                    }
                }
                return TensorData.ofFloatsAs(target, dims, values).bytes();
            });
        }

        /** A Cast wherever an input's type differs from what its slot requires, and at the graph's outputs. */
        private int insertCasts() {
            int before = graph.nodes().size();
            for (Map.Entry<Node, DataType[]> e : required.entrySet()) {
                Node node = e.getKey();
                DataType[] slots = e.getValue();
                for (int i = 0; i < slots.length; i++) {
                    if (slots[i] != null && node.input(i).type() != slots[i]) {
                        node.setInput(i, cast(node.input(i), slots[i]));
                    }
                }
            }
            DataType io = convertIo ? target : DataType.FLOAT;
            for (int i = 0; i < graph.outputs().size(); i++) {
                Value out = graph.outputs().get(i);
                if (types.containsKey(out) && out.type() != io && out.producer() != null) {
                    String name = out.name();
                    graph.rename(out, graph.uniqueValueName(name + "_" + shortName(out.type())));
                    Value boundary = graph.op("Cast", name + "_cast", List.of(out), Map.of("to", (long) io.onnxCode()));
                    boundary.setTypeAndShape(io, out.shape());
                    graph.rename(boundary, name);
                    graph.setOutput(i, boundary);
                }
            }
            return graph.nodes().size() - before;
        }

        /** {@code v} as {@code type}: one shared Cast per value and type, or the value a widening Cast came from. */
        private Value cast(Value v, DataType type) {
            Node p = v.producer();
            if (p != null && p.is("Cast") && p.input(0).type() == type && type != DataType.FLOAT
                    && v.type() == DataType.FLOAT) {
                return p.input(0);
            }
            return casts.computeIfAbsent(v, k -> new HashMap<>()).computeIfAbsent(type, t -> {
                Value out = graph.op("Cast", v.name() + "_to_" + shortName(t), List.of(v), Map.of("to", (long) t.onnxCode()));
                out.setTypeAndShape(t, v.shape());
                return out;
            });
        }

        /** Readers of a Cast to its input's own type read the input; the Casts go in cleanup. */
        private int removeNoOpCasts() {
            for (Node n : List.copyOf(graph.nodes())) {
                Value in = n.input(0);
                if (n.is("Cast") && in != null && in.type() != null && in.type().onnxCode() == n.attrInt("to", -1)
                        && !n.output(0).isGraphOutput()) {
                    graph.replaceAllUses(n.output(0), in);
                }
            }
            return graph.cleanup();
        }
    }
}
