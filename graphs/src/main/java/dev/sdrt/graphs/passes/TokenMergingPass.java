package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder;
import dev.sdrt.graphs.analysis.AttentionFinder.Attention;
import dev.sdrt.graphs.analysis.AttentionFinder.Kind;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code tome}: token merging for Stable Diffusion (ToMe for SD, bipartite soft matching) around
 * the self-attention (attn1) of every transformer block at the allowed resolutions.
 *
 * <pre>
 *   x [B, N, C] ─┬─ to_q ─┐                          x ── merge ─┬─ to_q ─┐
 *                ├─ to_k ─┼─ attention ─ to_out ─▶    becomes    ├─ to_k ─┼─ attention ─ to_out ── unmerge ─▶
 *                └─ to_v ─┘          [B, N, C']                  └─ to_v ─┘   [B, N − r, C']        [B, N, C']
 * </pre>
 *
 * <ul>
 *   <li><b>Where:</b> every self-attention ({@link AttentionFinder} kind SELF; cross and joint
 *       attention and the MLP are left alone) whose token count N satisfies
 *       {@code ceil(sqrt(H0*W0 / N)) <= max_downsample}, H0×W0 being the latent's size (the first
 *       4-D float graph input: NCHW, or NHWC when its second dimension exceeds its fourth; without
 *       one, the largest self-attention's token count as a square). Its tokens lie on an h×w grid,
 *       {@code h = ceil(H0 / downsample)}, {@code w = ceil(W0 / downsample)} (tomesd's rule).
 *       Static N and C are needed: the pass runs shape inference first and leaves blocks with
 *       symbolic token counts alone, with a note (export with static shapes).
 *   <li><b>What:</b> the tokens entering attn1 (the input of its q, k and v projections) are
 *       split into one destination per stride×stride cell and sources (the rest); each source's
 *       most cosine-similar destination is found; the {@code r = min(floor(N * ratio), sources)}
 *       sources with the highest similarity are merged by mean into their destinations; attn1 runs
 *       on the N − r tokens [kept sources, destinations]; after its output projection, every
 *       token takes its slot's result. The ops and the reason for each are in
 *       {@link TokenMergingBuilder}: no TopK (no k ≤ 3840 limit at any size), no scatter.
 *   <li><b>Options:</b> {@code ratio} (default 0.5, capped at 0.75; 0 is the identity: the pass
 *       changes nothing), {@code max_downsample} (default 1), {@code stride} (default 2, the same
 *       in both directions), {@code random} (default false).
 *   <li><b>Destinations:</b> with {@code random=false}, each cell's top-left token (tomesd's
 *       {@code use_rand=False}), as constants. With {@code random=true}, a new graph input per
 *       merged resolution: {@value #DST_INDEX_INPUT} (downsample 1) or
 *       {@code tome_dst_index_d<downsample>}, int64 of shape [h / stride, w / stride], one
 *       destination offset {@code dy * stride + dx} in [0, stride²) per cell, which the host draws
 *       per step (no device sync). Every merged block of that resolution uses it (tomesd draws per
 *       block; the difference is in which random cells, not in kind).
 *   <li><b>Idempotent:</b> the model's metadata gets {@value #METADATA_KEY} (the options and the
 *       number of blocks); a model with that key, or with nodes named {@code tome/...}, is left
 *       as it is.
 * </ul>
 *
 * Every op the pass adds is in {@link #TENSORRT_OPS}.
 */
public final class TokenMergingPass implements GraphPass {
    static final Set<String> OPTIONS = Set.of("ratio", "max_downsample", "stride", "random");

    /** Ratios above this merge too much for SD to keep its image; larger values are capped. */
    public static final double MAX_RATIO = 0.75;

    /** The random destination-choice input of the top-level (downsample 1) blocks. */
    public static final String DST_INDEX_INPUT = "tome_dst_index";

    /** metadata_props key marking a merged model. */
    public static final String METADATA_KEY = "sdrt.tome";

    /** Prefix of every node the pass adds. */
    static final String NODE_PREFIX = "tome/";

    /**
     * The op types this pass may add, all parsed by TensorRT 10.6's ONNX parser (onnx-tensorrt's
     * operator support matrix): Gather, GatherElements, MatMul, Transpose, ReduceL2, ReduceMax,
     * ReduceSum, ArgMax, Div, Mul, Add, Sub, Floor, Cast, Unsqueeze, Reshape, Expand, Concat,
     * Where, Equal, Greater, GreaterOrEqual, Less, And. TopK is not among them (k ≤ 3840), nor any
     * scatter (ScatterElements and ScatterND with a reduction are not supported by TensorRT's
     * core layers).
     */
    public static final Set<String> TENSORRT_OPS = Set.of("Gather", "GatherElements", "MatMul", "Transpose", "ReduceL2",
            "ReduceMax", "ReduceSum", "ArgMax", "Div", "Mul", "Add", "Sub", "Floor", "Cast", "Unsqueeze", "Reshape",
            "Expand", "Concat", "Where", "Equal", "Greater", "GreaterOrEqual", "Less", "And");

    /** Ops between the attention's context MatMul and its output projection (head merge). */
    private static final Set<String> HEAD_MERGE = Set.of("Transpose", "Reshape", "Cast", "Identity", "Squeeze",
            "Unsqueeze");
    private static final int MAX_REGION_NODES = 400;

    private final double ratio;
    private final boolean capped;
    private final int maxDownsample;
    private final int stride;
    private final boolean random;

    /**
     * @param ratio fraction of each block's tokens merged away, in [0, 1]; above {@link #MAX_RATIO}
     *     it is capped
     * @param maxDownsample merge blocks whose grid is at most this much coarser than the latent
     * @param stride cell size (stride × stride tokens, one destination each)
     * @param random whether the destination of each cell is a graph input instead of the top-left
     */
    public TokenMergingPass(double ratio, int maxDownsample, int stride, boolean random) {
        if (!(ratio >= 0 && ratio <= 1)) {
            throw new IllegalArgumentException("tome ratio must be in [0, 1], got " + ratio);
        }
        if (maxDownsample < 1) {
            throw new IllegalArgumentException("tome max_downsample must be at least 1, got " + maxDownsample);
        }
        if (stride < 1) {
            throw new IllegalArgumentException("tome stride must be at least 1, got " + stride);
        }
        this.capped = ratio > MAX_RATIO;
        this.ratio = Math.min(ratio, MAX_RATIO);
        this.maxDownsample = maxDownsample;
        this.stride = stride;
        this.random = random;
    }

    /** The defaults: ratio 0.5, max_downsample 1, stride 2, random false. */
    public TokenMergingPass() {
        this(0.5, 1, 2, false);
    }

    /** From pipeline options {@code ratio}, {@code max_downsample}, {@code stride}, {@code random}. */
    static TokenMergingPass fromOptions(Map<String, String> options) {
        String randomText = options.getOrDefault("random", "false");
        if (!randomText.equals("true") && !randomText.equals("false")) {
            throw new IllegalArgumentException("option random of pass tome must be true or false, got '" + randomText + "'");
        }
        return new TokenMergingPass(number(options, "ratio", "0.5"), (int) integer(options, "max_downsample", "1"),
                (int) integer(options, "stride", "2"), randomText.equals("true"));
    }

    private static double number(Map<String, String> options, String key, String fallback) {
        String text = options.getOrDefault(key, fallback);
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("option " + key + " of pass tome must be a number, got '" + text + "'");
        }
    }

    private static long integer(Map<String, String> options, String key, String fallback) {
        String text = options.getOrDefault(key, fallback);
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("option " + key + " of pass tome must be an integer, got '" + text + "'");
        }
    }

    @Override
    public String name() {
        return "tome";
    }

    public double ratio() {
        return ratio;
    }

    /** The span of one attn1: its input, the projections reading it, its output, and the nodes between. */
    private record Span(Attention attention, Value input, Set<Node> projections, Value output, Set<Node> region) {
    }

    /** One block to merge: where, and with what grid and r. */
    private record Plan(Span span, int downsample, TokenMergingLayout layout, int r, Dim batch, int channels,
            int outChannels) {
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        if (capped) {
            result.note("ratio capped at " + MAX_RATIO);
        }
        if (ratio == 0) {
            result.note("ratio 0: identity");
            return result.end(graph);
        }
        if (model.metadata().containsKey(METADATA_KEY)
                || graph.nodes().stream().anyMatch(n -> n.name().startsWith(NODE_PREFIX))) {
            result.note("already merged (" + METADATA_KEY + "=" + model.metadata().getOrDefault(METADATA_KEY, "?") + ")");
            return result.end(graph);
        }
        try {
            OnnxChecker.inferShapes(model);
        } catch (OnnxChecker.OnnxCheckException e) {
            result.note("shape inference failed, using the shapes the model states: " + e.getMessage());
        }
        List<Attention> selfAttentions = AttentionFinder.find(graph).stream().filter(a -> a.kind() == Kind.SELF).toList();
        long[] latent = latentSize(graph, selfAttentions, result);
        Map<String, Integer> skipped = new TreeMap<>();
        List<Plan> plans = new ArrayList<>();
        for (Attention attention : selfAttentions) {
            Plan plan = latent == null ? null : plan(attention, latent, skipped);
            if (plan != null) {
                plans.add(plan);
            } else if (latent == null) {
                skipped.merge("no 4-D latent input and no square token count to take the grid from", 1, Integer::sum);
            }
        }
        int nodesBefore = graph.nodes().size();
        Map<TokenMergingLayout, TokenMergingBuilder.Indices> indices = new LinkedHashMap<>();
        Map<String, Shape> inputs = new LinkedHashMap<>();
        for (int i = 0; i < plans.size(); i++) {
            Plan plan = plans.get(i);
            TokenMergingBuilder.Indices at = indices.computeIfAbsent(plan.layout(),
                    layout -> layoutIndices(graph, model.opset(), layout, plan.downsample(), inputs));
            result.rewritten(rewrite(graph, model.opset(), NODE_PREFIX + "b" + i, plan, at));
            result.affected(plan.span().attention().qProjection().name());
        }
        if (!plans.isEmpty()) {
            graph.toposort();
            verifyShapes(model, plans);
            model.metadata().put(METADATA_KEY, String.format("ratio=%s;max_downsample=%d;stride=%d;random=%s;blocks=%d",
                    ratio, maxDownsample, stride, random, plans.size()));
        }
        result.matched(plans.size()).added(graph.nodes().size() - nodesBefore);
        result.note(summary(plans, selfAttentions.size()));
        skipped.forEach((why, count) -> result.note(count + " self-attention" + (count == 1 ? "" : "s") + " left as "
                + (count == 1 ? "it is" : "they are") + ": " + why));
        inputs.forEach((name, shape) -> result.note("destination choice input " + name + ": int64" + shape
                + ", values in [0, " + stride * stride + ")"));
        return result.end(graph);
    }

    // ---------------------------------------------------------------- planning

    /** Latent H0, W0 from the first 4-D float input, or the largest self-attention as a square; null if neither. */
    private static long[] latentSize(Graph graph, List<Attention> attentions, PassResult.Builder result) {
        for (Value in : graph.inputs()) {
            Shape s = in.shape();
            boolean isFloat = in.type() == DataType.FLOAT || in.type() == DataType.FLOAT16 || in.type() == DataType.BFLOAT16;
            if (isFloat && s != null && s.rank() == 4 && s.dim(1).isFixed() && s.dim(2).isFixed() && s.dim(3).isFixed()) {
                boolean nhwc = s.dim(1).value() > s.dim(3).value();
                return nhwc ? new long[] {s.dim(1).value(), s.dim(2).value()} : new long[] {s.dim(2).value(), s.dim(3).value()};
            }
        }
        long largest = 0;
        for (Attention a : attentions) {
            Shape s = a.querySource().shape();
            if (s != null && s.rank() == 3 && s.dim(1).isFixed()) {
                largest = Math.max(largest, s.dim(1).value());
            }
        }
        long side = Math.round(Math.sqrt(largest));
        if (largest > 0 && side * side == largest) {
            result.note("no 4-D latent input: the largest self-attention's " + largest + " tokens taken as a " + side + "×"
                    + side + " latent");
            return new long[] {side, side};
        }
        return null;
    }

    /** The plan for one self-attention, or null (the reason counted in {@code skipped}). */
    private Plan plan(Attention attention, long[] latent, Map<String, Integer> skipped) {
        Value x = attention.querySource();
        Shape shape = x == null ? null : x.shape();
        if (shape == null || shape.rank() != 3 || !shape.dim(1).isFixed() || !shape.dim(2).isFixed()) {
            skipped.merge("input is not [B, N, C] with a static N and C (export with static shapes)", 1, Integer::sum);
            return null;
        }
        if (x.type() != DataType.FLOAT && x.type() != DataType.FLOAT16 && x.type() != DataType.BFLOAT16) {
            skipped.merge("input is not floating point", 1, Integer::sum);
            return null;
        }
        int n = Math.toIntExact(shape.dim(1).value());
        long h0 = latent[0];
        long w0 = latent[1];
        int downsample = (int) Math.max(1, Math.ceil(Math.sqrt((double) (h0 * w0 / n))));
        if (downsample > maxDownsample) {
            skipped.merge("coarser than max_downsample=" + maxDownsample, 1, Integer::sum);
            return null;
        }
        int h = (int) ((h0 + downsample - 1) / downsample);
        int w = (int) ((w0 + downsample - 1) / downsample);
        if ((long) h * w != n) {
            skipped.merge("token count is not the latent's grid at its downsample", 1, Integer::sum);
            return null;
        }
        TokenMergingLayout layout = new TokenMergingLayout(h, w, stride, stride);
        int r = (int) Math.min((long) Math.floor(n * ratio), layout.numSrc());
        if (r <= 0) {
            skipped.merge("nothing to merge at this ratio and stride", 1, Integer::sum);
            return null;
        }
        Span span = span(attention);
        if (span == null) {
            skipped.merge("attn1 not traced from its projections to its output projection", 1, Integer::sum);
            return null;
        }
        Shape out = span.output().shape();
        if (out == null || out.rank() != 3 || !out.dim(1).isFixed() || out.dim(1).value() != n || !out.dim(2).isFixed()) {
            skipped.merge("output projection is not [B, N, C']", 1, Integer::sum);
            return null;
        }
        return new Plan(span, downsample, layout, r, shape.dim(0), Math.toIntExact(shape.dim(2).value()),
                Math.toIntExact(out.dim(2).value()));
    }

    /**
     * attn1 from its input to its output: the q, k and v projections must read the query source
     * directly; the output is the output projection (MatMul or Gemm with a constant weight, after
     * the head merge) with its bias Add; every node between must lead there.
     */
    private static Span span(Attention a) {
        Value input = a.querySource();
        Set<Node> projections = new LinkedHashSet<>();
        for (Node p : new Node[] {a.qProjection(), a.kProjection(), a.vProjection()}) {
            if (p == null || p.input(0) != input) {
                return null;
            }
            projections.add(p);
        }
        Value output = outputProjection(a.context().output(0));
        if (output == null) {
            return null;
        }
        Set<Node> region = new LinkedHashSet<>(projections);
        Deque<Node> work = new ArrayDeque<>(projections);
        while (!work.isEmpty()) {
            for (Value v : work.poll().outputs()) {
                if (v.isGraphOutput()) {
                    return null;
                }
                if (v == output) {
                    continue;
                }
                for (Node c : v.consumerNodes()) {
                    if (region.add(c)) {
                        if (region.size() > MAX_REGION_NODES) {
                            return null;
                        }
                        work.add(c);
                    }
                }
            }
        }
        boolean core = region.contains(a.scores()) && region.contains(a.softmax()) && region.contains(a.context());
        return core && output.producer() != null && region.contains(output.producer())
                ? new Span(a, input, projections, output, region) : null;
    }

    /** The output projection's result (after its bias), walking from the context through the head merge. */
    private static Value outputProjection(Value v) {
        for (int depth = 0; depth < 8 && v != null; depth++) {
            Node next = v.soleConsumer();
            if (next == null || v.isGraphOutput()) {
                return null;
            }
            if ((next.is("MatMul") || next.is("Gemm")) && next.input(0) == v && next.input(1) != null
                    && next.input(1).isConstant() && next.input(1).constant().rank() == 2) {
                Value out = next.output(0);
                Node add = out.soleConsumer();
                if (add != null && add.is("Add") && !out.isGraphOutput()) {
                    Value other = add.input(0) == out ? add.input(1) : add.input(0);
                    if (other != null && other.isConstant() && other.constant().rank() == 1) {
                        return add.output(0);
                    }
                }
                return out;
            }
            if (!HEAD_MERGE.contains(next.opType()) || !next.domain().isEmpty()) {
                return null;
            }
            v = next.output(0);
        }
        return null;
    }

    // ---------------------------------------------------------------- rewriting

    private TokenMergingBuilder.Indices layoutIndices(Graph graph, long opset, TokenMergingLayout layout, int downsample,
            Map<String, Shape> inputs) {
        String prefix = NODE_PREFIX + "grid" + layout.h() + "x" + layout.w();
        if (!random) {
            return TokenMergingBuilder.constantIndices(graph, layout, prefix);
        }
        String name = downsample == 1 ? DST_INDEX_INPUT : DST_INDEX_INPUT + "_d" + downsample;
        Shape shape = Shape.of(layout.cellsY(), layout.cellsX());
        Value choice = graph.addInput(name, DataType.INT64, shape);
        inputs.put(name, shape);
        return TokenMergingBuilder.computedIndices(graph, opset, layout, choice, prefix);
    }

    /** Merge on the projections' input, unmerge on the output projection's output; returns the nodes rewired. */
    private static int rewrite(Graph graph, long opset, String prefix, Plan plan, TokenMergingBuilder.Indices indices) {
        Span span = plan.span();
        TokenMergingBuilder builder = new TokenMergingBuilder(graph, opset, prefix, span.input().type(), plan.batch(),
                plan.channels(), plan.r(), indices);
        Value merged = builder.merge(span.input());
        for (Node p : span.projections()) {
            p.setInput(0, merged);
        }
        // the attention's values now hold N − r tokens: forget the stale shapes, inference restores them
        for (Node n : span.region()) {
            n.outputs().forEach(v -> v.setShape(null));
        }
        Value output = span.output();
        List<Node> readers = List.copyOf(output.consumerNodes());
        Value unmerged = builder.unmerge(output, plan.outChannels(), output.type());
        for (Node reader : readers) {
            for (int i = 0; i < reader.inputCount(); i++) {
                if (reader.input(i) == output) {
                    reader.setInput(i, unmerged);
                }
            }
        }
        return span.projections().size() + readers.size();
    }

    /** Shape inference must give every merged attention N − r tokens; a fixed token count inside attn1 would not. */
    private static void verifyShapes(OnnxModel model, List<Plan> plans) {
        try {
            OnnxChecker.inferShapes(model);
        } catch (OnnxChecker.OnnxCheckException e) {
            throw new IllegalStateException("tome: shape inference rejects the merged graph: " + e.getMessage(), e);
        }
        for (Plan plan : plans) {
            Shape s = plan.span().output().shape();
            long expected = plan.layout().tokens() - plan.r();
            if (s == null || s.rank() != 3 || !s.dim(1).isFixed() || s.dim(1).value() != expected) {
                throw new IllegalStateException("tome: attn1 of " + plan.span().attention().qProjection().name()
                        + " computes " + s + " after merging, not " + expected + " tokens; something inside it fixes the"
                        + " token count");
            }
        }
    }

    private static String summary(List<Plan> plans, int selfAttentions) {
        Map<String, Integer> byGrid = new LinkedHashMap<>();
        for (Plan p : plans) {
            String key = String.format("%d×%d (%d → %d tokens)", p.layout().h(), p.layout().w(), p.layout().tokens(),
                    p.layout().tokens() - p.r());
            byGrid.merge(key, 1, Integer::sum);
        }
        StringBuilder sb = new StringBuilder(String.format("merged %d of %d self-attentions", plans.size(), selfAttentions));
        String sep = ": ";
        for (var e : byGrid.entrySet()) {
            sb.append(sep).append(e.getValue()).append(" at ").append(e.getKey());
            sep = ", ";
        }
        return sb.toString();
    }
}
