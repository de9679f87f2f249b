package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The ONNX ops of bipartite soft matching (ToMe for SD) around one attention: {@link #merge}
 * turns tokens x [B, N, C] into [B, N − r, C] and {@link #unmerge} turns the attention's result
 * [B, N − r, C'] back into [B, N, C']. One method per step, each step's ops in order
 * (Ns sources, Nd destinations, i and j source indices, d a destination, p a position):
 *
 * <pre>
 * split       src = Gather(x, srcPositions, axis 1)                                    [B, Ns, C]
 *             dst = Gather(x, dstPositions, axis 1)                                    [B, Nd, C]
 * similarity  scores = MatMul(src / ReduceL2(src), Transpose(dst / ReduceL2(dst)))     [B, Ns, Nd]
 * matching    best = ReduceMax(scores), choice = ArgMax(scores)                        [B, Ns]
 *             key  = Cast(Floor(best · 2^15), int64) · Ns + (Ns − 1 − i)   distinct    [B, Ns]
 *             rank = ReduceSum(Cast(Greater(key[j], key[i]), int32), over j)           [B, Ns]
 *             merged = Less(rank, r)
 * merge       A = Cast(Equal(choice[i], d) And merged[i])                              [B, Nd, Ns]
 *             dst' = (dst + MatMul(A, src)) / (1 + ReduceSum(A, over i))              [B, Nd, C]
 *             kept = ReduceSum(Where(Equal(rank[i], r + q), i, 0), over i)            [B, Ns − r]
 *             out  = Concat(GatherElements(src, kept), dst')                          [B, N − r, C]
 * unmerge     slot[i] = merged[i] ? (Ns − r) + choice[i] : rank[i] − r                 [B, Ns]
 *             slot[p] = isDst[p] ? (Ns − r) + cell[p] : slot[srcIndex[p]]              [B, N]
 *             out  = GatherElements(y, slot, axis 1)                                  [B, N, C']
 * </pre>
 *
 * <p>This is tomesd's {@code bipartite_soft_matching_random2d}: sources sorted by their best
 * similarity, descending, the first r merged into their best destination by mean (tomesd's
 * {@code scatter_reduce(mean, include_self=True)}), the rest kept in that order, then the
 * destinations (listed by cell). Three choices keep it compilable by TensorRT 10.6 at any token
 * count:
 *
 * <ul>
 *   <li><b>No sort, so no TopK.</b> TensorRT's TopK takes k ≤ 3840, and a 1024² SD 1.x latent
 *       has 12,288 sources at the top level (r = 8,192 at ratio 0.5, 4,096 kept: neither side
 *       fits one TopK). Each source's place in the descending order is counted instead: its rank
 *       is the number of sources with a larger key (an elementwise Greater and a ReduceSum over
 *       Ns × Ns, no GEMM). Keys are distinct: the similarity scaled by 2^15 and floored (a cosine
 *       stays finite after scaling in float16, so a later fp16 pass cannot overflow it; in fp32,
 *       scores closer than 3·10⁻⁵ count as equal), times Ns, plus a tie-break that puts the
 *       lower source index first, like a stable sort.
 *   <li><b>No scatter.</b> The mean merge is a MatMul with the one-hot assignment A (destination
 *       by source) and its row sums; the kept list inverts the rank with a one-hot sum; the
 *       unmerge is one GatherElements whose index says, for each token, which merged slot holds
 *       its result.
 *   <li><b>Static shapes.</b> r and the grid come from the graph's shapes, so every tensor has a
 *       size the builder knows.
 * </ul>
 *
 * Cost beyond tomesd's own matching: Ns² + (Ns − r)·Ns integer comparisons reduced by sums
 * (151 M + 50 M per image for Ns = 12,288; TensorRT can fuse each compare into its reduction,
 * else the int32 term takes 4 bytes an element) and the Nd × Ns × C merge MatMul (as many FLOPs as
 * the similarity MatMul).
 */
final class TokenMergingBuilder {
    /** Similarity → integer key scale: 2^15, so |cosine| · scale stays finite in float16. */
    static final float KEY_SCALE = 32768f;

    /**
     * Where sources and destinations sit: as constants (destination at each cell's top-left) or
     * computed from a destination-choice input. Shared by the blocks of one grid.
     *
     * @param srcPositions [Ns] raster positions of the sources, split order
     * @param dstPositions [Nd] raster positions of the destinations, one per cell
     * @param srcIndexOfPosition [N] each position's index in the source list (0 for destinations)
     * @param isDstPosition [N] bool, whether a position holds a destination
     */
    record Indices(TokenMergingLayout layout, Value srcPositions, Value dstPositions, Value srcIndexOfPosition,
            Value isDstPosition) {
    }

    /** What matching decided, kept for the unmerge. */
    private record Matching(Value choice, Value rank, Value merged) {
    }

    private final Emit emit;
    private final DataType type;
    private final Dim batch;
    private final int channels;
    private final int r;
    private final Indices indices;
    private Matching matching;

    /**
     * @param prefix node-name prefix of this block's ops
     * @param type the tokens' float type
     * @param batch the tokens' batch dimension
     * @param channels C, the tokens' width
     * @param r tokens to merge away, 0 &lt; r ≤ Ns
     */
    TokenMergingBuilder(Graph graph, long opset, String prefix, DataType type, Dim batch, int channels, int r,
            Indices indices) {
        TokenMergingLayout layout = indices.layout();
        if (r <= 0 || r > layout.numSrc()) {
            throw new IllegalArgumentException("r = " + r + " tokens outside (0, " + layout.numSrc() + "]");
        }
        this.emit = new Emit(graph, opset, prefix, type);
        this.type = type;
        this.batch = batch;
        this.channels = channels;
        this.r = r;
        this.indices = indices;
    }

    private TokenMergingLayout layout() {
        return indices.layout();
    }

    /** Tokens kept after merging: N − r. */
    int mergedTokens() {
        return layout().tokens() - r;
    }

    // ---------------------------------------------------------------- layout indices

    /** The layout's indices with every destination at its cell's top-left token, as initializers. */
    static Indices constantIndices(Graph graph, TokenMergingLayout layout, String prefix) {
        long[] choice = layout.topLeftChoice();
        boolean[] isDst = layout.isDstPosition(choice);
        long n = layout.tokens();
        return new Indices(layout,
                graph.constant(prefix + "/src_positions", TensorData.vector(layout.srcPositions(choice))),
                graph.constant(prefix + "/dst_positions", TensorData.vector(layout.dstPositions(choice))),
                graph.constant(prefix + "/src_index_of_position", TensorData.vector(layout.srcIndexOfPosition(choice))),
                graph.constant(prefix + "/is_dst_position", bools(new long[] {n}, isDst)));
    }

    /**
     * The layout's indices computed from {@code choice}, an int64 [cellsY, cellsX] input holding
     * each cell's destination offset {@code dy * sx + dx} in [0, sx*sy).
     */
    static Indices computedIndices(Graph graph, long opset, TokenMergingLayout layout, Value choice, String prefix) {
        Emit e = new Emit(graph, opset, prefix);
        int cells = layout.cells();
        int perCell = layout.cellSize() - 1;
        int n = layout.tokens();
        Value k = e.op("Reshape", List.of(choice, e.longs(cells)), DataType.INT64, cells);
        // sources of each cell: in-cell offsets 0..s-2, those at or past the destination moved up by one
        Value range = e.longs(new long[] {1, perCell}, iota(0, perCell));
        Value kColumn = e.unsqueeze(k, 1, DataType.INT64, cells, 1);
        Value past = e.op("GreaterOrEqual", List.of(range, kColumn), DataType.BOOL, cells, perCell);
        Value t = e.op("Add", List.of(range, e.cast(past, DataType.INT64, cells, perCell)), DataType.INT64, cells, perCell);
        Value offsets = e.longs(layout.cellOffsets());
        Value cellSrc = e.op("Add", List.of(e.gather(offsets, t, 0, DataType.INT64, cells, perCell),
                e.longs(new long[] {cells, 1}, layout.cellBase())), DataType.INT64, cells, perCell);
        Value src = e.op("Reshape", List.of(cellSrc, e.longs((long) cells * perCell)), DataType.INT64, cells * perCell);
        long[] leftovers = layout.leftoverPositions();
        if (leftovers.length > 0) {
            src = e.op("Concat", List.of(src, e.longs(leftovers)), Map.of("axis", 0L), DataType.INT64, layout.numSrc());
        }
        Value dst = e.op("Add", List.of(e.longs(layout.cellBase()), e.gather(offsets, k, 0, DataType.INT64, cells)),
                DataType.INT64, cells);
        // per position: destination when its offset is its cell's choice; source index one less past it
        Value kAt = e.gather(k, e.longs(layout.positionCell()), 0, DataType.INT64, n);
        Value offset = e.longs(layout.positionOffset());
        Value isDst = e.op("Equal", List.of(offset, kAt), DataType.BOOL, n);
        Value after = e.cast(e.op("Greater", List.of(offset, kAt), DataType.BOOL, n), DataType.INT64, n);
        Value srcIndex = e.op("Sub", List.of(e.longs(layout.positionSrcBase()), after), DataType.INT64, n);
        srcIndex = e.op("Where", List.of(isDst, e.longs(new long[0], 0), srcIndex), DataType.INT64, n);
        return new Indices(layout, src, dst, srcIndex, isDst);
    }

    // ---------------------------------------------------------------- merge

    /** x [B, N, C] → [unmerged sources, merged destinations] [B, N − r, C]. */
    Value merge(Value x) {
        Value src = emit.gather(x, indices.srcPositions(), 1, type, batch, layout().numSrc(), channels);
        Value dst = emit.gather(x, indices.dstPositions(), 1, type, batch, layout().numDst(), channels);
        Value scores = similarity(src, dst);
        matching = matching(scores);
        return mergeTokens(src, dst, matching);
    }

    /** Cosine similarity of every source with every destination: [B, Ns, Nd]. */
    private Value similarity(Value src, Value dst) {
        int ns = layout().numSrc();
        int nd = layout().numDst();
        Value srcUnit = emit.op("Div", List.of(src, emit.reduce("ReduceL2", src, 2, true, type, batch, ns, 1)), type,
                batch, ns, channels);
        Value dstUnit = emit.op("Div", List.of(dst, emit.reduce("ReduceL2", dst, 2, true, type, batch, nd, 1)), type,
                batch, nd, channels);
        Value dstT = emit.op("Transpose", List.of(dstUnit), Map.of("perm", new long[] {0, 2, 1}), type, batch, channels, nd);
        return emit.op("MatMul", List.of(srcUnit, dstT), type, batch, ns, nd);
    }

    /** Each source's best destination, its rank by best similarity (descending), and whether it merges. */
    private Matching matching(Value scores) {
        int ns = layout().numSrc();
        Value best = emit.reduce("ReduceMax", scores, 2, false, type, batch, ns);
        Value choice = emit.cast(emit.op("ArgMax", List.of(scores), Map.of("axis", 2L, "keepdims", 0L), DataType.INT64,
                batch, ns), DataType.INT32, batch, ns);
        Value scaled = emit.op("Mul", List.of(best, emit.floats(KEY_SCALE)), type, batch, ns);
        Value quantized = emit.cast(emit.op("Floor", List.of(scaled), type, batch, ns), DataType.INT64, batch, ns);
        long[] tieBreak = new long[ns];
        for (int i = 0; i < ns; i++) {
            tieBreak[i] = ns - 1 - i;
        }
        Value key = emit.op("Add", List.of(emit.op("Mul", List.of(quantized, emit.longs(new long[0], ns)), DataType.INT64,
                batch, ns), emit.longs(tieBreak)), DataType.INT64, batch, ns);
        Value keyJ = emit.unsqueeze(key, 1, DataType.INT64, batch, 1, ns);
        Value keyI = emit.unsqueeze(key, 2, DataType.INT64, batch, ns, 1);
        // counted in int32: exact, and half the bytes of int64 should the Ns × Ns term be materialized
        Value ahead = emit.cast(emit.op("Greater", List.of(keyJ, keyI), DataType.BOOL, batch, ns, ns), DataType.INT32,
                batch, ns, ns);
        Value rank = emit.reduce("ReduceSum", ahead, 2, false, DataType.INT32, batch, ns);
        Value merged = emit.op("Less", List.of(rank, emit.ints(r)), DataType.BOOL, batch, ns);
        return new Matching(choice, rank, merged);
    }

    /** Mean-merges the first r sources into their destinations; keeps the others in rank order. */
    private Value mergeTokens(Value src, Value dst, Matching m) {
        int ns = layout().numSrc();
        int nd = layout().numDst();
        int kept = ns - r;
        Value choiceRow = emit.unsqueeze(m.choice(), 1, DataType.INT32, batch, 1, ns);
        Value mergedRow = emit.unsqueeze(m.merged(), 1, DataType.BOOL, batch, 1, ns);
        Value into = emit.op("Equal", List.of(choiceRow, emit.ints(new long[] {nd, 1}, iota(0, nd))), DataType.BOOL, batch,
                nd, ns);
        Value assign = emit.cast(emit.op("And", List.of(into, mergedRow), DataType.BOOL, batch, nd, ns), type, batch, nd,
                ns);
        Value sum = emit.op("Add", List.of(dst, emit.op("MatMul", List.of(assign, src), type, batch, nd, channels)), type,
                batch, nd, channels);
        Value count = emit.reduce("ReduceSum", assign, 2, true, type, batch, nd, 1);
        Value size = emit.op("Add", List.of(count, emit.floats(1f)), type, batch, nd, 1);
        Value dstMerged = emit.op("Div", List.of(sum, size), type, batch, nd, channels);
        if (kept == 0) {
            return dstMerged;
        }
        // the source at rank r + p is the p-th kept one: the index where a one-hot row is 1, as a sum
        Value rankRow = emit.unsqueeze(m.rank(), 1, DataType.INT32, batch, 1, ns);
        Value isAt = emit.op("Equal", List.of(rankRow, emit.ints(new long[] {kept, 1}, iota(r, kept))), DataType.BOOL,
                batch, kept, ns);
        Value indexIfAt = emit.op("Where", List.of(isAt, emit.ints(new long[] {1, ns}, iota(0, ns)), emit.ints(0)),
                DataType.INT32, batch, kept, ns);
        Value keptIds = emit.reduce("ReduceSum", indexIfAt, 2, false, DataType.INT32, batch, kept);
        Value keptTokens = emit.op("GatherElements", List.of(src, emit.perToken(keptIds, DataType.INT32, channels, batch,
                kept)), Map.of("axis", 1L), type, batch, kept, channels);
        return emit.op("Concat", List.of(keptTokens, dstMerged), Map.of("axis", 1L), type, batch, mergedTokens(), channels);
    }

    // ---------------------------------------------------------------- unmerge

    /**
     * y [B, N − r, C'] (the attention's result on the merged tokens) → [B, N, C']: each
     * destination's result back at its place and at the places of the sources merged into it,
     * each kept source's own result at its place.
     */
    Value unmerge(Value y, int outChannels, DataType outType) {
        if (matching == null) {
            throw new IllegalStateException("unmerge before merge");
        }
        int ns = layout().numSrc();
        int n = layout().tokens();
        long kept = ns - r;
        Value intoDst = emit.op("Add", List.of(matching.choice(), emit.ints(kept)), DataType.INT32, batch, ns);
        Value ownSlot = emit.op("Sub", List.of(matching.rank(), emit.ints(r)), DataType.INT32, batch, ns);
        Value srcSlot = emit.op("Where", List.of(matching.merged(), intoDst, ownSlot), DataType.INT32, batch, ns);
        Value slotBySource = emit.gather(srcSlot, indices.srcIndexOfPosition(), 1, DataType.INT32, batch, n);
        long[] dstSlot = plus(indices.layout().positionCell(), kept);
        Value slot = emit.op("Where", List.of(indices.isDstPosition(), emit.ints(new long[] {n}, dstSlot), slotBySource),
                DataType.INT32, batch, n);
        return emit.op("GatherElements", List.of(y, emit.perToken(slot, DataType.INT32, outChannels, batch, n)),
                Map.of("axis", 1L), outType, batch, n, outChannels);
    }

    private static long[] iota(long from, int count) {
        long[] out = new long[count];
        for (int i = 0; i < count; i++) {
            out[i] = from + i;
        }
        return out;
    }

    private static long[] plus(long[] values, long add) {
        long[] out = values.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] += add;
        }
        return out;
    }

    private static TensorData bools(long[] dims, boolean[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length);
        for (boolean v : values) {
            b.put((byte) (v ? 1 : 0));
        }
        return TensorData.of(DataType.BOOL, dims, b.flip());
    }

    // ---------------------------------------------------------------- node emission

    /** Adds nodes and initializers under one name prefix, with every output's type and shape set. */
    private static final class Emit {
        private final Graph graph;
        private final OpEmitter ops;
        private final String prefix;
        private final DataType floatType;

        Emit(Graph graph, long opset, String prefix) {
            this(graph, opset, prefix, DataType.FLOAT);
        }

        Emit(Graph graph, long opset, String prefix, DataType floatType) {
            this.graph = graph;
            this.ops = new OpEmitter(graph, opset, (node, values) -> longs(values));
            this.prefix = prefix;
            this.floatType = floatType;
        }

        Value op(String opType, List<Value> inputs, DataType type, Object... dims) {
            return op(opType, inputs, Map.of(), type, dims);
        }

        Value op(String opType, List<Value> inputs, Map<String, Object> attrs, DataType type, Object... dims) {
            return typed(ops.op(opType, name(opType), inputs, attrs), type, dims);
        }

        private String name(String opType) {
            return prefix + "/" + opType;
        }

        private static Value typed(Value v, DataType type, Object... dims) {
            return v.setTypeAndShape(type, shape(dims));
        }

        Value cast(Value x, DataType to, Object... dims) {
            return op("Cast", List.of(x), Map.of("to", (long) to.onnxCode()), to, dims);
        }

        Value gather(Value data, Value index, long axis, DataType type, Object... dims) {
            return op("Gather", List.of(data, index), Map.of("axis", axis), type, dims);
        }

        Value unsqueeze(Value x, long axis, DataType type, Object... dims) {
            return typed(ops.unsqueeze(name("Unsqueeze"), x, axis), type, dims);
        }

        /** A reduction over one axis. */
        Value reduce(String opType, Value x, long axis, boolean keepDims, DataType type, Object... dims) {
            return typed(ops.reduce(opType, name(opType), x, keepDims, axis), type, dims);
        }

        /** idx [B, M] → [B, M, C], the index form GatherElements wants along the token axis. */
        Value perToken(Value idx, DataType indexType, int channels, Dim batch, int m) {
            Value column = unsqueeze(idx, 2, indexType, batch, m, 1);
            return op("Expand", List.of(column, longs(1, 1, channels)), indexType, batch, m, channels);
        }

        /** A rank-1 int64 initializer. */
        Value longs(long... values) {
            return longs(new long[] {values.length}, values);
        }

        /** An int64 initializer of the given shape (a scalar for an empty shape). */
        Value longs(long[] dims, long... values) {
            return graph.constant(prefix + "/const", TensorData.ofLongs(dims, values));
        }

        /** An int32 scalar initializer. */
        Value ints(long value) {
            return ints(new long[0], value);
        }

        /** An int32 initializer of the given shape. */
        Value ints(long[] dims, long... values) {
            int[] narrow = new int[values.length];
            for (int i = 0; i < values.length; i++) {
                narrow[i] = Math.toIntExact(values[i]);
            }
            return graph.constant(prefix + "/const", TensorData.ofInts(dims, narrow));
        }

        /** A float scalar initializer of the tokens' type. */
        Value floats(float value) {
            return graph.constant(prefix + "/const", TensorData.ofFloatsAs(floatType, new long[0], new float[] {value}));
        }

        private static Shape shape(Object... dims) {
            List<Dim> out = new ArrayList<>();
            for (Object d : dims) {
                out.add(d instanceof Dim dim ? dim : Dim.of(((Number) d).longValue()));
            }
            return Shape.of(out);
        }
    }
}
