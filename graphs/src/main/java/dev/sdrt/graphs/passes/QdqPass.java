package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * {@code qdq} ({@code mode=int8|fp8}): QuantizeLinear/DequantizeLinear pairs on the inputs of Conv,
 * MatMul and Gemm with constant weights, the explicit quantization TensorRT 10 compiles into int8 or
 * fp8 kernels.
 *
 * <pre>
 *   x ── Conv(W, b)                      x ── Q(s_x) ── DQ(s_x) ── Conv(DQ(W_q, s_w, axis 0), b)
 *   x ── MatMul(W [K,N])      becomes    x ── Q(s_x) ── DQ(s_x) ── MatMul(DQ(W_q, s_w, axis 1))
 * </pre>
 *
 * <ul>
 *   <li>Activations: per tensor, scale = amax / 127 (int8) or amax / 448 (fp8 E4M3), zero point 0 of
 *       type INT8 or FLOAT8E4M3FN; amax comes from a {@link Scales} file, keyed by the name of the
 *       tensor entering the op, looked up through Transpose, Reshape, Cast and similar ops that keep
 *       the amax (so the names survive channels-last's Transposes and fp16's boundary Casts). Names
 *       are the contract with {@code sdrt calibrate}: a pass that removes the op whose output was
 *       measured (fp16 and cleanup drop the no-op float Casts torch writes before to_out) leaves
 *       that op unquantized, and the notes list it. One Q/DQ pair per tensor, shared by
 *       every quantized reader, so the Q, K and V projections of one input (and the K and V of
 *       every cross-attention, which read the text embedding) share one scale by construction.
 *       The attention's own batched MatMuls (scores, context) are not quantized: TensorRT's fused
 *       attention runs them in the activations' float type and has no K/V scales to reconcile.
 *   <li>Weights: per output channel (axis 0 of a Conv weight [O,I,kh,kw], axis 1 of a MatMul weight
 *       [K,N], axis 0 or 1 of a Gemm weight by transB), scale = max|W[c]| / 127 or / 448. By
 *       default ({@code weights=quantized}) they are stored quantized (INT8 or FLOAT8E4M3FN
 *       initializers) behind a DequantizeLinear. TensorRT's explicit quantization accepts weights
 *       either pre-quantized behind a DequantizeLinear or in high precision behind a Q/DQ pair,
 *       which it quantizes at build time with the Q's scale; either way the plan stores quantized
 *       weights and the DQ fuses into the Conv/MatMul. Stored quantized, the ONNX file is 4×
 *       smaller and ONNX Runtime does not quantize the weights at every run. {@code weights=float}
 *       writes float weights followed by QuantizeLinear and DequantizeLinear instead (the form
 *       older TensorRT versions and QAT exports use).
 *   <li>Skip list ({@code skip=REGEX}, found anywhere in a node's name or op type): default
 *       {@link #DEFAULT_SKIP}, the layers usually left in high precision in diffusion models (conv_in,
 *       conv_out, the time and added-condition embeddings, shortcut convs, norm_out, proj_out),
 *       matched on the module paths that torch.onnx.export and sdrt's exporter both write into node
 *       names; with the default list, a Conv that reads a graph input or writes a graph output is
 *       skipped too, so the rule holds for graphs without names. A {@code skip} option adds its
 *       patterns to both; {@code skip-defaults=false} drops them, leaving only its own.
 *   <li>An op whose input has no amax in the scales file is left unquantized and listed in the
 *       pass's notes. No scales at all is an error that says how to make them ({@code sdrt
 *       calibrate}).
 *   <li>Op types ({@code ops=Conv|MatMul|Gemm}, the default): only ops of the listed types are
 *       quantized, the others stay float (listed in the notes). TensorRT 10.6 may not run Conv in
 *       fp8, so {@code mode=fp8:ops=MatMul|Gemm} keeps fp8 to the linear layers.
 *   <li>SmoothQuant: factors s per input channel (from the scales file's {@code smoothquant} section
 *       or {@code smoothquant=FILE}) scale the weights' input channels by s and the activation by
 *       1/s: folded into the γ and β of a LayerNormalization whose output only smoothed ops read,
 *       otherwise a Mul before the Q. Exact in float (a product regrouped); the activation's amax
 *       is then the file's smoothed amax, or amax / min(s) (an upper bound, noted) when it has none.
 *   <li>fp8 and half-precision graphs need QuantizeLinear-19 (float8 types, half scales): the
 *       model's opset is raised to 19, moving the {@code axes} attribute of Reduce ops into an
 *       input as opset 18 requires; int8 on float32 graphs keeps the model's opset (13 or newer).
 *       Run qdq after fp16: this pass writes scales in the activations' type.
 * </ul>
 *
 * Idempotent: an op whose weight already comes from a DequantizeLinear is counted as quantized and
 * left alone. Lossy: the tests bound the error on the tiny UNets (cosine similarity ≥ 0.99 in int8).
 */
public final class QdqPass implements GraphPass {
    static final Set<String> OPTIONS = Set.of("mode", "scales", "skip", "skip-defaults", "smoothquant", "weights", "ops");

    /** The op types this pass quantizes, and by default all of them ({@code ops=} narrows it). */
    public static final Set<String> QUANTIZABLE_OPS = Set.of("Conv", "MatMul", "Gemm");

    /** Module paths usually kept in high precision in diffusion UNets and transformers. */
    public static final String DEFAULT_SKIP = "conv_in|conv_out|time_embedding|time_emb_proj|time_text_embed|add_embedding"
            + "|conv_shortcut|norm_out|proj_out";

    static final String NO_SCALES = "the qdq pass needs activation scales: pass scales=FILE.json (sdrt optimize --scales "
            + "FILE.json); make the file with `sdrt calibrate --model PIPELINE_DIR --out FILE.json`";

    /** Ops whose output has the amax of their input (a scale file's name may sit before them). */
    private static final Set<String> AMAX_PRESERVING = Set.of("Transpose", "Reshape", "Identity", "Cast", "Squeeze",
            "Unsqueeze", "Flatten");
    private static final int LISTED = 8;

    /** The quantized type and the largest magnitude it represents (the amax maps to it). */
    public enum Mode {
        INT8(DataType.INT8, 127f),
        FP8(DataType.FLOAT8E4M3FN, 448f);

        private final DataType type;
        private final float max;

        Mode(DataType type, float max) {
            this.type = type;
            this.max = max;
        }

        public DataType type() {
            return type;
        }

        public float max() {
            return max;
        }
    }

    /** How weights are written: quantized initializers + DequantizeLinear, or float + QuantizeLinear + DequantizeLinear. */
    public enum WeightFormat {
        QUANTIZED,
        FLOAT
    }

    private final Mode mode;
    private final Scales scales;
    private final Pattern skip;
    private final boolean skipBoundaryConvs;
    private final Scales.SmoothQuant smoothQuant;
    private final WeightFormat weights;
    private final boolean quantize;
    private final Set<String> ops;

    private QdqPass(Builder b) {
        this.mode = b.mode;
        this.scales = b.scales;
        this.skip = b.skip;
        this.skipBoundaryConvs = b.skipBoundaryConvs;
        this.smoothQuant = b.smoothQuant != null ? b.smoothQuant : b.scales == null ? null : b.scales.smoothQuant().orElse(null);
        this.weights = b.weights;
        this.quantize = b.quantize;
        this.ops = b.ops;
    }

    public static Builder builder(Mode mode) {
        return new Builder(mode);
    }

    /** Options of a {@link QdqPass}; {@link #build()} checks them. */
    public static final class Builder {
        private final Mode mode;
        private Scales scales;
        private Pattern skip = Pattern.compile(DEFAULT_SKIP);
        private boolean skipBoundaryConvs = true;
        private Scales.SmoothQuant smoothQuant;
        private WeightFormat weights = WeightFormat.QUANTIZED;
        private boolean quantize = true;
        private Set<String> ops = QUANTIZABLE_OPS;

        private Builder(Mode mode) {
            this.mode = mode;
        }

        public Builder scales(Scales s) {
            this.scales = s;
            return this;
        }

        /** Replaces the default skip list (and its boundary-Conv rule); an empty regex skips nothing. */
        public Builder skip(String regex) {
            this.skip = regex.isEmpty() ? null : compileSkip(regex);
            this.skipBoundaryConvs = false;
            return this;
        }

        /** Skips what {@code regex} matches as well as what the list skips already (the defaults stay, boundary rule included). */
        public Builder alsoSkip(String regex) {
            if (!regex.isEmpty()) {
                // compiled alone first, so that an error names the caller's pattern
                Pattern extra = compileSkip(regex);
                this.skip = skip == null ? extra : Pattern.compile("(?:" + skip.pattern() + ")|(?:" + regex + ")");
            }
            return this;
        }

        private static Pattern compileSkip(String regex) {
            try {
                return Pattern.compile(regex);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("option skip of pass qdq is not a valid regex: " + e.getDescription()
                        + " in '" + regex + "'", e);
            }
        }

        /** SmoothQuant factors (instead of the scales file's own). */
        public Builder smoothQuant(Scales.SmoothQuant sq) {
            this.smoothQuant = sq;
            return this;
        }

        public Builder weights(WeightFormat format) {
            this.weights = format;
            return this;
        }

        /**
         * Quantizes only ops of these types (some of {@link #QUANTIZABLE_OPS}); the others stay in
         * float. For targets whose quantized kernels cover only some ops: TensorRT 10.6 may have no
         * fp8 Conv, so fp8 there means {@code ops=MatMul|Gemm}.
         */
        public Builder ops(Set<String> opTypes) {
            if (opTypes.isEmpty() || !QUANTIZABLE_OPS.containsAll(opTypes)) {
                throw new IllegalArgumentException("option ops of pass qdq takes some of Conv|MatMul|Gemm, got '"
                        + String.join("|", opTypes) + "'");
            }
            this.ops = Set.copyOf(opTypes);
            return this;
        }

        /**
         * false: apply SmoothQuant only, without Q/DQ (exact in float; for checking the smoothing).
         * Not idempotent: a second application smooths again.
         */
        public Builder quantize(boolean q) {
            this.quantize = q;
            return this;
        }

        public QdqPass build() {
            if (quantize && scales == null) {
                throw new IllegalArgumentException(NO_SCALES);
            }
            return new QdqPass(this);
        }
    }

    /**
     * From pipeline options: {@code mode=int8|fp8}, {@code scales=FILE}, {@code skip=REGEX} (added to the
     * default list), {@code skip-defaults=true|false}, {@code smoothquant=FILE}, {@code weights=quantized|float},
     * {@code ops=Conv|MatMul|Gemm}.
     */
    static QdqPass fromOptions(Map<String, String> options) {
        String m = options.getOrDefault("mode", "int8");
        Mode mode = switch (m) {
            case "int8" -> Mode.INT8;
            case "fp8" -> Mode.FP8;
            default -> throw new IllegalArgumentException("option mode of pass qdq must be int8 or fp8, got '" + m + "'");
        };
        String file = options.get("scales");
        if (file == null || file.isEmpty()) {
            throw new IllegalArgumentException(NO_SCALES);
        }
        Builder b = builder(mode).scales(Scales.read(Path.of(file)));
        String skipDefaults = options.getOrDefault("skip-defaults", "true");
        if (!skipDefaults.equals("true") && !skipDefaults.equals("false")) {
            throw new IllegalArgumentException("option skip-defaults of pass qdq must be true or false, got '" + skipDefaults + "'");
        }
        String skip = options.getOrDefault("skip", "");
        if (skipDefaults.equals("false")) {
            b.skip(skip);
        } else {
            b.alsoSkip(skip);
        }
        if (options.containsKey("smoothquant")) {
            b.smoothQuant(Scales.readSmoothQuant(Path.of(options.get("smoothquant"))));
        }
        String w = options.getOrDefault("weights", "quantized");
        b.weights(switch (w) {
            case "quantized" -> WeightFormat.QUANTIZED;
            case "float" -> WeightFormat.FLOAT;
            default -> throw new IllegalArgumentException("option weights of pass qdq must be quantized or float, got '" + w + "'");
        });
        if (options.containsKey("ops")) {
            Set<String> ops = new LinkedHashSet<>();
            for (String op : options.get("ops").split("\\|", -1)) {
                ops.add(op.trim());
            }
            b.ops(ops);
        }
        return b.build();
    }

    public Mode mode() {
        return mode;
    }

    @Override
    public String name() {
        return "qdq";
    }

    /** A Conv, MatMul or Gemm reading a computed activation (input 0) and a constant weight (input 1). */
    record Target(Node node, Value activation, Value weight, int axis, int inputAxis) {
    }

    /**
     * The target at {@code n}: Conv with a constant 4-D weight, MatMul with a constant 2-D weight,
     * Gemm with a constant 2-D B, all on floating-point tensors; null otherwise.
     */
    private static Target target(Node n) {
        if (!n.domain().isEmpty() || n.inputCount() < 2) {
            return null;
        }
        Value x = n.input(0);
        Value w = n.input(1);
        if (x == null || w == null || Constants.isConstant(x) || !Constants.isConstant(w)) {
            return null;
        }
        TensorData wd = Constants.data(w);
        if (!isFloat(wd.type()) || x.type() != null && !isFloat(x.type())) {
            return null;
        }
        if (n.is("Conv") && wd.rank() >= 3) {
            return new Target(n, x, w, 0, 1);
        }
        if (n.is("MatMul") && n.inputCount() == 2 && wd.rank() == 2) {
            return new Target(n, x, w, 1, 0);
        }
        if (n.is("Gemm") && wd.rank() == 2) {
            boolean transB = n.attrInt("transB", 0) != 0;
            return new Target(n, x, w, transB ? 0 : 1, transB ? 1 : 0);
        }
        return null;
    }

    private static boolean isFloat(DataType t) {
        return t == DataType.FLOAT || t == DataType.FLOAT16 || t == DataType.BFLOAT16;
    }

    /**
     * The activations this pass would quantize in {@code graph} (each once, graph order), before any
     * skip list: what a calibration run must measure.
     */
    public static List<Value> quantizableActivations(Graph graph) {
        Set<Value> out = new LinkedHashSet<>();
        for (Node n : graph.nodes()) {
            Target t = target(n);
            if (t != null) {
                out.add(t.activation());
            }
        }
        return new ArrayList<>(out);
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        graph.toposort();
        OnnxChecker.inferShapes(model);
        new Run(model, result).run();
        graph.toposort();
        return result.end(graph);
    }

    private final class Run {
        private final OnnxModel model;
        private final Graph graph;
        private final PassResult.Builder result;
        private final List<Target> planned = new ArrayList<>();
        /** The activation each planned target quantizes (after smoothing) and its amax. */
        private final Map<Node, Value> activationOf = new HashMap<>();
        private final Map<Value, Float> amaxOf = new HashMap<>();
        private final Map<Value, Value> dequantized = new HashMap<>();
        private final Map<Value, Value> dequantizedWeights = new HashMap<>();
        private final Map<String, Integer> quantizedOps = new TreeMap<>();
        private final List<String> skippedByOp = new ArrayList<>();
        private final List<String> skippedByRegex = new ArrayList<>();
        private final List<String> skippedBoundary = new ArrayList<>();
        private final Set<String> missingAmax = new LinkedHashSet<>();
        private int missingOps;
        private int alreadyQuantized;
        private int added;
        private int removed;
        private int rewritten;
        private SmoothQuantFolding folding;

        Run(OnnxModel model, PassResult.Builder result) {
            this.model = model;
            this.graph = model.graph();
            this.result = result;
        }

        void run() {
            for (Node n : List.copyOf(graph.nodes())) {
                Target t = target(n);
                if (t == null) {
                    if ((n.is("Conv") || n.is("MatMul") || n.is("Gemm")) && n.input(1) != null && n.input(1).producer() != null
                            && n.input(1).producer().is("DequantizeLinear")) {
                        alreadyQuantized++;
                    }
                    continue;
                }
                if (!ops.contains(n.opType())) {
                    skippedByOp.add(n.name());
                    continue;
                }
                if (skip != null && (skip.matcher(n.name()).find() || skip.matcher(n.opType()).find())) {
                    skippedByRegex.add(n.name());
                    continue;
                }
                if (skipBoundaryConvs && n.is("Conv") && (t.activation().isGraphInput() || n.output(0).isGraphOutput())) {
                    skippedBoundary.add(n.name());
                    continue;
                }
                if (quantize) {
                    Float amax = fileAmax(t.activation());
                    if (amax == null) {
                        missingAmax.add(t.activation().name());
                        missingOps++;
                        continue;
                    }
                    amaxOf.put(t.activation(), amax);
                }
                planned.add(t);
                activationOf.put(n, t.activation());
            }
            if (smoothQuant != null) {
                folding = new SmoothQuantFolding(graph, smoothQuant, quantize, amaxOf);
                folding.smooth(planned, activationOf);
                added += folding.added();
                rewritten += folding.rewritten();
            }
            if (quantize && !planned.isEmpty()) {
                prepareOpset();
                for (Target t : planned) {
                    quantize(t);
                }
            }
            // the weights, γ/β and Constant nodes the rewritten ops no longer read
            removed += graph.cleanup();
            report();
        }

        /** The scales file's amax for {@code v}, looked up by name and through ops that keep the amax. */
        private Float fileAmax(Value v) {
            Value u = v;
            for (int depth = 0; u != null && depth < 8; depth++) {
                Float a = scales.amax(u.name());
                if (a != null) {
                    return a;
                }
                Node p = u.producer();
                if (p == null || !p.domain().isEmpty() || !AMAX_PRESERVING.contains(p.opType())) {
                    return null;
                }
                u = p.input(0);
            }
            return null;
        }

        // ---- quantization ----

        /** fp8 and half-precision scales need QuantizeLinear-19; per-axis DequantizeLinear needs 13. */
        private void prepareOpset() {
            boolean half = planned.stream().anyMatch(t -> t.activation().type() == DataType.FLOAT16
                    || t.activation().type() == DataType.BFLOAT16);
            long needed = mode == Mode.FP8 || half ? 19 : 13;
            long from = model.opset();
            if (from < needed) {
                int moved = OpsetUpgrade.upgrade(model, needed);
                result.note(String.format("opset %d → %d for %s%s", from, needed, mode == Mode.FP8 ? "float8 Q/DQ" : "half-precision scales",
                        moved > 0 ? " (" + moved + " Reduce/Split ops rewritten for opset 18)" : ""));
            }
        }

        private void quantize(Target t) {
            Node n = t.node();
            n.setInput(0, dequantizedActivation(activationOf.get(n)));
            n.setInput(1, dequantizedWeight(t));
            quantizedOps.merge(n.opType(), 1, Integer::sum);
            result.affected(n.name());
            rewritten++;
        }

        /** x → QuantizeLinear → DequantizeLinear, once per tensor. */
        private Value dequantizedActivation(Value x) {
            return dequantized.computeIfAbsent(x, k -> {
                DataType type = x.type() == null ? DataType.FLOAT : x.type();
                float scale = amaxOf.get(x) / mode.max();
                Value s = graph.constant(x.name() + "_scale", TensorData.ofFloatsAs(type, new long[0], new float[] {scale}));
                Value zp = graph.constant(x.name() + "_zero_point", zeros(new long[0]));
                Value q = graph.op("QuantizeLinear", x.name() + "_quantize", List.of(x, s, zp), null);
                q.setTypeAndShape(mode.type(), x.shape());
                Value dq = graph.op("DequantizeLinear", x.name() + "_dequantize", List.of(q, s, zp), null);
                dq.setTypeAndShape(type, x.shape());
                added += 2;
                return dq;
            });
        }

        /** W per output channel: quantized initializer → DequantizeLinear, or float → QuantizeLinear → DequantizeLinear. */
        private Value dequantizedWeight(Target t) {
            Value w = t.weight();
            Value out = dequantizedWeights.computeIfAbsent(w, k -> {
                TensorData data = Constants.data(w);
                long[] dims = data.dims();
                int axis = t.axis();
                float[] values = data.toFloats();
                long[] scaleDims = {dims[axis]};
                // the scales as the graph stores them (half for half weights), so weights quantize with what DQ multiplies by
                TensorData scaleData = TensorData.ofFloatsAs(data.type(), scaleDims, channelScales(values, dims, axis));
                float[] scale = scaleData.toFloats();
                Value s = graph.constant(w.name() + "_scale", scaleData);
                Value zp = graph.constant(w.name() + "_zero_point", zeros(scaleDims));
                Value quantized;
                if (weights == WeightFormat.QUANTIZED) {
                    quantized = graph.constant(w.name() + "_quantized", quantizeWeights(values, dims, axis, scale));
                } else {
                    quantized = graph.op("QuantizeLinear", w.name() + "_quantize", List.of(w, s, zp), Map.of("axis", (long) axis));
                    quantized.setTypeAndShape(mode.type(), Shape.of(dims));
                    added++;
                }
                Value dq = graph.op("DequantizeLinear", w.name() + "_dequantize", List.of(quantized, s, zp), Map.of("axis", (long) axis));
                dq.setTypeAndShape(data.type(), Shape.of(dims));
                added++;
                return dq;
            });
            if (weights == WeightFormat.QUANTIZED) {
                t.node().setInput(1, out);
            }
            return out;
        }

        /** max|W| over each slice along {@code axis}, divided by the type's max (1 for an all-zero slice). */
        private float[] channelScales(float[] values, long[] dims, int axis) {
            int channels = (int) dims[axis];
            long inner = 1;
            for (int i = axis + 1; i < dims.length; i++) {
                inner *= dims[i];
            }
            float[] amax = new float[channels];
            for (int i = 0; i < values.length; i++) {
                int c = (int) ((i / inner) % channels);
                amax[c] = Math.max(amax[c], Math.abs(values[i]));
            }
            float[] scale = new float[channels];
            for (int c = 0; c < channels; c++) {
                scale[c] = amax[c] > 0 && Float.isFinite(amax[c]) ? amax[c] / mode.max() : 1f;
            }
            return scale;
        }

        private TensorData quantizeWeights(float[] values, long[] dims, int axis, float[] scale) {
            int channels = (int) dims[axis];
            long inner = 1;
            for (int i = axis + 1; i < dims.length; i++) {
                inner *= dims[i];
            }
            ByteBuffer out = ByteBuffer.allocate(values.length).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; i++) {
                float q = values[i] / scale[(int) ((i / inner) % channels)];
                out.put(mode == Mode.INT8 ? (byte) Math.max(-127, Math.min(127, Math.rint(q))) : Float8E4M3.encode(q));
            }
            return TensorData.of(mode.type(), dims, out.flip());
        }

        private TensorData zeros(long[] dims) {
            int n = 1;
            for (long d : dims) {
                n *= (int) d;
            }
            return TensorData.of(mode.type(), dims, ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN));
        }

        private void report() {
            int count = quantizedOps.values().stream().mapToInt(Integer::intValue).sum();
            result.matched(count).added(added).removed(removed).rewritten(rewritten);
            if (quantize) {
                result.note(String.format("%s: %d ops quantized %s; %d activation Q/DQ pairs (per tensor, one per tensor its readers"
                        + " share), weights per output channel (%s)", mode.name().toLowerCase(), count, quantizedOps,
                        dequantized.size(), weights == WeightFormat.QUANTIZED ? mode.type() + " initializers → DequantizeLinear"
                                : "float → QuantizeLinear → DequantizeLinear"));
            }
            if (!skippedByOp.isEmpty()) {
                result.note(String.format("%d left in float by ops=%s: %s", skippedByOp.size(), String.join("|", new TreeSet<>(ops)),
                        listed(skippedByOp)));
            }
            if (!skippedByRegex.isEmpty()) {
                result.note(String.format("%d skipped by skip='%s': %s", skippedByRegex.size(), skip.pattern(), listed(skippedByRegex)));
            }
            if (!skippedBoundary.isEmpty()) {
                result.note(String.format("%d skipped, Conv reading a graph input or writing a graph output: %s",
                        skippedBoundary.size(), listed(skippedBoundary)));
            }
            if (missingOps > 0) {
                result.note(String.format("%d ops NOT quantized: the scales file has no amax for their input (%d tensors: %s)",
                        missingOps, missingAmax.size(), listed(new ArrayList<>(missingAmax))));
            }
            if (folding != null) {
                result.note(folding.note());
            }
            if (alreadyQuantized > 0) {
                result.note(alreadyQuantized + " ops already quantized (weights from DequantizeLinear), left as they are");
            }
        }

        private String listed(List<String> names) {
            return names.size() <= LISTED ? names.toString()
                    : names.subList(0, LISTED) + " and " + (names.size() - LISTED) + " more";
        }
    }
}
