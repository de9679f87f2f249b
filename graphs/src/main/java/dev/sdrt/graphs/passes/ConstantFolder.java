package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Evaluates the small constant arithmetic that torch writes around Reshape, Expand and attention
 * scales ({@code Shape → Gather → Unsqueeze → Concat}, {@code Shape → Slice → Cast → Sqrt → Div}),
 * exactly as ONNX Runtime would: integer ops in 64-bit, float ops in IEEE single precision
 * (correctly rounded, so the folded value is bit-identical), results rounded to the output type.
 *
 * <p>A node ONNX Runtime would reject (a missing input, an axis out of range, mismatched shapes or
 * types) is not folded: it stays in the graph for the checker to name.
 */
final class ConstantFolder {
    /** Outputs larger than this stay in the graph: folding is for shape arithmetic, not for weights. */
    static final long MAX_ELEMENTS = 4096;

    /**
     * How many inputs each foldable op takes: the first {@code required} must be present, up to
     * {@code max} may be given, and omitted optional ones (ONNX's empty input name) are null.
     * Variadic inputs ({@code max} unbounded) are all required.
     */
    private record Arity(int required, int max) {
        boolean accepts(Node node) {
            int n = node.inputCount();
            if (n < required || n > max) {
                return false;
            }
            int present = max == Integer.MAX_VALUE ? n : required;
            for (int i = 0; i < present; i++) {
                if (node.input(i) == null) {
                    return false;
                }
            }
            return true;
        }
    }

    private static final Map<String, Arity> FOLDABLE = Map.ofEntries(
            Map.entry("Shape", new Arity(1, 1)), Map.entry("Gather", new Arity(2, 2)),
            Map.entry("Unsqueeze", new Arity(1, 2)), Map.entry("Squeeze", new Arity(1, 2)),
            Map.entry("Concat", new Arity(1, Integer.MAX_VALUE)), Map.entry("Cast", new Arity(1, 1)),
            Map.entry("Slice", new Arity(3, 5)), Map.entry("Add", new Arity(2, 2)), Map.entry("Sub", new Arity(2, 2)),
            Map.entry("Mul", new Arity(2, 2)), Map.entry("Div", new Arity(2, 2)), Map.entry("Sqrt", new Arity(1, 1)),
            Map.entry("Equal", new Arity(2, 2)), Map.entry("Where", new Arity(3, 3)),
            Map.entry("ConstantOfShape", new Arity(1, 1)), Map.entry("Expand", new Arity(2, 2)),
            Map.entry("Reshape", new Arity(2, 2)));

    private final long opset;

    ConstantFolder(long opset) {
        this.opset = opset;
    }

    /** A small tensor: integers (and bools) as longs, floating point as floats. */
    private record Small(DataType type, long[] dims, long[] ints, float[] floats) {
        int size() {
            return ints != null ? ints.length : floats.length;
        }

        boolean isFloat() {
            return floats != null;
        }
    }

    /**
     * The single output of {@code node} computed from its constant inputs (or, for Shape, from
     * its input's fixed shape), or null when the node cannot or should not be folded.
     */
    TensorData fold(Node node) {
        Arity arity = node.domain().isEmpty() ? FOLDABLE.get(node.opType()) : null;
        if (arity == null || !arity.accepts(node) || node.outputs().size() != 1) {
            return null;
        }
        if (node.is("Shape")) {
            return foldShape(node);
        }
        List<Small> in = new ArrayList<>();
        for (Value v : node.inputs()) {
            if (v == null) {
                in.add(null);
                continue;
            }
            if (!v.isConstant() || v.constant().numElements() > 1 << 16) {
                return null;
            }
            Small s = read(v.constant());
            if (s == null) {
                return null;
            }
            in.add(s);
        }
        Small out = switch (node.opType()) {
            case "Gather" -> gather(in.get(0), in.get(1), node.attrInt("axis", 0));
            case "Unsqueeze" -> unsqueeze(in.get(0), axes(node, in));
            case "Squeeze" -> squeeze(in.get(0), axes(node, in));
            case "Concat" -> concat(in, node.attrInt("axis", 0));
            case "Cast" -> cast(in.get(0), node.attrInt("to", 0));
            case "Slice" -> slice(in);
            case "Add", "Sub", "Mul", "Div", "Equal" -> binary(node.opType(), in.get(0), in.get(1));
            case "Sqrt" -> sqrt(in.get(0));
            case "Where" -> where(in.get(0), in.get(1), in.get(2));
            case "ConstantOfShape" -> constantOfShape(in.get(0), node.attrTensor("value"));
            case "Expand" -> expand(in.get(0), in.get(1));
            case "Reshape" -> reshape(in.get(0), in.get(1), node.attrInt("allowzero", 0) != 0);
            default -> null;
        };
        return out == null || out.size() > MAX_ELEMENTS ? null : write(out);
    }

    private static TensorData foldShape(Node node) {
        Shape shape = node.input(0).shape();
        if (shape == null || !shape.isFullyFixed()) {
            return null;
        }
        long[] dims = shape.toArray();
        int rank = dims.length;
        int start = (int) clamp(normalize(node.attrInt("start", 0), rank), 0, rank);
        int end = (int) clamp(normalize(node.attrInt("end", rank), rank), 0, rank);
        return TensorData.vector(Arrays.copyOfRange(dims, start, Math.max(start, end)));
    }

    // ---- reading and writing ----

    private static Small read(TensorData t) {
        long[] dims = t.dims();
        return switch (t.type()) {
            case INT64, INT32, INT8, UINT8, BOOL -> new Small(t.type(), dims, t.toLongs(), null);
            case FLOAT, FLOAT16, BFLOAT16 -> new Small(t.type(), dims, null, t.toFloats());
            default -> null;
        };
    }

    private static TensorData write(Small s) {
        return switch (s.type()) {
            case INT64 -> TensorData.ofLongs(s.dims(), s.ints());
            case INT32 -> TensorData.ofInts(s.dims(), Arrays.stream(s.ints()).mapToInt(v -> (int) v).toArray());
            case INT8, UINT8, BOOL -> {
                ByteBuffer b = ByteBuffer.allocate(s.size()).order(ByteOrder.LITTLE_ENDIAN);
                for (long v : s.ints()) {
                    b.put((byte) v);
                }
                yield TensorData.of(s.type(), s.dims(), b.flip());
            }
            case FLOAT, FLOAT16, BFLOAT16 -> TensorData.ofFloatsAs(s.type(), s.dims(), s.floats());
            default -> throw new IllegalStateException("unexpected type " + s.type());
        };
    }

    /** A tensor of {@code like}'s kind and type with new dims, taking elements at {@code index}. */
    private static Small take(Small like, DataType type, long[] dims, int[] index) {
        if (like.isFloat()) {
            float[] out = new float[index.length];
            for (int i = 0; i < index.length; i++) {
                out[i] = like.floats()[index[i]];
            }
            return new Small(type, dims, null, out);
        }
        long[] out = new long[index.length];
        for (int i = 0; i < index.length; i++) {
            out[i] = like.ints()[index[i]];
        }
        return new Small(type, dims, out, null);
    }

    // ---- index arithmetic ----

    /** Elements of a tensor of {@code dims}; Long.MAX_VALUE when that overflows (the caller then refuses). */
    private static long numel(long[] dims) {
        for (long d : dims) {
            if (d == 0) {
                return 0;
            }
        }
        long n = 1;
        for (long d : dims) {
            n = n > Long.MAX_VALUE / d ? Long.MAX_VALUE : n * d;
        }
        return n;
    }

    /** True when {@code axis} names one of {@code rank} axes (negative counts from the end). */
    private static boolean isAxis(long axis, long rank) {
        return axis >= -rank && axis < rank;
    }

    /** Integer values of a rank-1 tensor (shapes, axes, starts), or null when it is not one. */
    private static long[] vectorInts(Small s) {
        return s == null || s.isFloat() || s.dims().length != 1 ? null : s.ints();
    }

    private static long normalize(long axis, long rank) {
        return axis < 0 ? axis + rank : axis;
    }

    private static long clamp(long v, long lo, long hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    /** Numpy broadcasting of two shapes, or null when they do not broadcast. */
    private static long[] broadcast(long[] a, long[] b) {
        int rank = Math.max(a.length, b.length);
        long[] out = new long[rank];
        for (int i = 0; i < rank; i++) {
            long da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
            long db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
            if (da != db && da != 1 && db != 1) {
                return null;
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /** For each element of a tensor of {@code outDims}, the element of a {@code inDims} tensor broadcast to it. */
    private static int[] broadcastIndex(long[] inDims, long[] outDims) {
        int n = (int) numel(outDims);
        int[] index = new int[n];
        int rank = outDims.length;
        int offset = rank - inDims.length;
        long[] coord = new long[rank];
        for (int i = 0; i < n; i++) {
            long src = 0;
            for (int d = offset; d < rank; d++) {
                long size = inDims[d - offset];
                src = src * size + (size == 1 ? 0 : coord[d]);
            }
            index[i] = (int) src;
            for (int d = rank - 1; d >= 0 && ++coord[d] == outDims[d]; d--) {
                coord[d] = 0;
            }
        }
        return index;
    }

    // ---- ops ----

    private long[] axes(Node node, List<Small> in) {
        if (OpEmitter.axesIsInput(node.opType(), opset)) {
            Small axes = in.size() > 1 ? in.get(1) : null;
            // ONNX Runtime takes a scalar axes tensor as well as a vector
            return axes == null || axes.isFloat() || axes.dims().length > 1 ? null : axes.ints();
        }
        return node.attrInts("axes");
    }

    private static Small unsqueeze(Small x, long[] axes) {
        if (axes == null) {
            return null;
        }
        int rank = x.dims().length + axes.length;
        boolean[] inserted = new boolean[rank];
        for (long a : axes) {
            if (!isAxis(a, rank) || inserted[(int) normalize(a, rank)]) {
                return null;
            }
            inserted[(int) normalize(a, rank)] = true;
        }
        long[] dims = new long[rank];
        for (int i = 0, j = 0; i < rank; i++) {
            dims[i] = inserted[i] ? 1 : x.dims()[j++];
        }
        return new Small(x.type(), dims, x.ints(), x.floats());
    }

    private static Small squeeze(Small x, long[] axes) {
        int rank = x.dims().length;
        boolean[] removed = new boolean[rank];
        for (int i = 0; i < rank; i++) {
            removed[i] = axes == null && x.dims()[i] == 1;
        }
        for (long a : axes == null ? new long[0] : axes) {
            if (!isAxis(a, rank) || x.dims()[(int) normalize(a, rank)] != 1) {
                return null;
            }
            removed[(int) normalize(a, rank)] = true;
        }
        long[] dims = new long[rank];
        int kept = 0;
        for (int i = 0; i < rank; i++) {
            if (!removed[i]) {
                dims[kept++] = x.dims()[i];
            }
        }
        return new Small(x.type(), Arrays.copyOf(dims, kept), x.ints(), x.floats());
    }

    private static Small concat(List<Small> parts, long axisAttr) {
        Small first = parts.get(0);
        int rank = first.dims().length;
        if (!isAxis(axisAttr, rank)) {
            return null;
        }
        int axis = (int) normalize(axisAttr, rank);
        for (Small p : parts) {
            if (p.type() != first.type() || p.dims().length != rank) {
                return null;
            }
            for (int d = 0; d < rank; d++) {
                if (d != axis && p.dims()[d] != first.dims()[d]) {
                    return null;
                }
            }
        }
        long outer = numel(Arrays.copyOf(first.dims(), axis));
        long[] dims = first.dims().clone();
        dims[axis] = parts.stream().mapToLong(p -> p.dims()[axis]).sum();
        if (numel(dims) > MAX_ELEMENTS) {
            return null;
        }
        int[] offsets = new int[parts.size()];
        for (int p = 1; p < parts.size(); p++) {
            offsets[p] = offsets[p - 1] + parts.get(p - 1).size();
        }
        int[] index = new int[(int) numel(dims)];
        int at = 0;
        for (long o = 0; o < outer; o++) {
            for (int p = 0; p < parts.size(); p++) {
                int chunk = (int) (parts.get(p).size() / outer);
                for (int i = 0; i < chunk; i++) {
                    index[at++] = offsets[p] + (int) o * chunk + i;
                }
            }
        }
        // all parts end to end, then picked in output order
        Small joined = first.isFloat()
                ? new Small(first.type(), dims, null, concatFloats(parts))
                : new Small(first.type(), dims, parts.stream().flatMapToLong(p -> Arrays.stream(p.ints())).toArray(), null);
        return take(joined, first.type(), dims, index);
    }

    private static float[] concatFloats(List<Small> parts) {
        float[] out = new float[parts.stream().mapToInt(Small::size).sum()];
        int at = 0;
        for (Small p : parts) {
            System.arraycopy(p.floats(), 0, out, at, p.size());
            at += p.size();
        }
        return out;
    }

    private static Small gather(Small data, Small indices, long axisAttr) {
        int rank = data.dims().length;
        if (indices.isFloat() || !isAxis(axisAttr, rank)) {
            return null;
        }
        int axis = (int) normalize(axisAttr, rank);
        long axisSize = data.dims()[axis];
        long outer = numel(Arrays.copyOf(data.dims(), axis));
        long inner = numel(Arrays.copyOfRange(data.dims(), axis + 1, rank));
        long[] dims = new long[rank - 1 + indices.dims().length];
        System.arraycopy(data.dims(), 0, dims, 0, axis);
        System.arraycopy(indices.dims(), 0, dims, axis, indices.dims().length);
        System.arraycopy(data.dims(), axis + 1, dims, axis + indices.dims().length, rank - axis - 1);
        if (numel(dims) > MAX_ELEMENTS) {
            return null;
        }
        int[] index = new int[(int) numel(dims)];
        int at = 0;
        for (long o = 0; o < outer; o++) {
            for (long raw : indices.ints()) {
                long k = normalize(raw, axisSize);
                if (k < 0 || k >= axisSize) {
                    return null;
                }
                for (long i = 0; i < inner; i++) {
                    index[at++] = (int) ((o * axisSize + k) * inner + i);
                }
            }
        }
        return take(data, data.type(), dims, index);
    }

    private static Small slice(List<Small> in) {
        Small data = in.get(0);
        int rank = data.dims().length;
        long[] starts = vectorInts(in.get(1));
        long[] ends = vectorInts(in.get(2));
        long[] axes = in.size() > 3 && in.get(3) != null ? vectorInts(in.get(3)) : null;
        long[] steps = in.size() > 4 && in.get(4) != null ? vectorInts(in.get(4)) : null;
        if (starts == null || ends == null || ends.length != starts.length
                || in.size() > 3 && in.get(3) != null && (axes == null || axes.length != starts.length)
                || in.size() > 4 && in.get(4) != null && (steps == null || steps.length != starts.length)) {
            return null;
        }
        boolean[] sliced = new boolean[rank];
        long[] first = new long[rank];
        long[] step = new long[rank];
        long[] dims = data.dims().clone();
        Arrays.fill(step, 1);
        for (int i = 0; i < starts.length; i++) {
            long a = axes == null ? i : axes[i];
            if (!isAxis(a, rank) || sliced[(int) normalize(a, rank)]) {
                return null;
            }
            int axis = (int) normalize(a, rank);
            sliced[axis] = true;
            long size = data.dims()[axis];
            long s = steps == null ? 1 : steps[i];
            if (s == 0) {
                return null;
            }
            // a step beyond the axis size takes one element either way; capping it keeps the arithmetic in range
            long maxStep = Math.max(size, 1);
            s = Math.max(-maxStep, Math.min(maxStep, s));
            long begin = normalize(starts[i], size);
            long end = normalize(ends[i], size);
            begin = s > 0 ? clamp(begin, 0, size) : clamp(begin, 0, size - 1);
            end = s > 0 ? clamp(end, 0, size) : clamp(end, -1, size - 1);
            long count = s > 0 ? (end - begin + s - 1) / s : (begin - end - s - 1) / -s;
            first[axis] = begin;
            step[axis] = s;
            dims[axis] = size == 0 ? 0 : Math.max(0, count);
        }
        int n = (int) numel(dims);
        int[] index = new int[n];
        long[] coord = new long[rank];
        for (int i = 0; i < n; i++) {
            long src = 0;
            for (int d = 0; d < rank; d++) {
                src = src * data.dims()[d] + first[d] + coord[d] * step[d];
            }
            index[i] = (int) src;
            for (int d = rank - 1; d >= 0 && ++coord[d] == dims[d]; d--) {
                coord[d] = 0;
            }
        }
        return take(data, data.type(), dims, index);
    }

    private static Small cast(Small x, long toCode) {
        DataType to = Arrays.stream(DataType.values()).filter(t -> t.onnxCode() == toCode).findFirst().orElse(null);
        boolean toFloat = to == DataType.FLOAT || to == DataType.FLOAT16 || to == DataType.BFLOAT16;
        boolean toInt = to == DataType.INT64 || to == DataType.INT32 || to == DataType.INT8 || to == DataType.UINT8
                || to == DataType.BOOL;
        if (!toFloat && !toInt) {
            return null;
        }
        int n = x.size();
        if (toFloat) {
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = x.isFloat() ? x.floats()[i] : (float) x.ints()[i];
            }
            return new Small(to, x.dims(), null, out);
        }
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            long v = x.isFloat() ? (long) x.floats()[i] : x.ints()[i];
            out[i] = switch (to) {
                case BOOL -> x.isFloat() ? (x.floats()[i] != 0 ? 1 : 0) : (v != 0 ? 1 : 0);
                case INT32 -> (int) v;
                case INT8 -> (byte) v;
                case UINT8 -> v & 0xff;
                default -> v;
            };
        }
        return new Small(to, x.dims(), out, null);
    }

    private static Small binary(String op, Small a, Small b) {
        long[] dims = broadcast(a.dims(), b.dims());
        if (dims == null || a.type() != b.type() || numel(dims) > MAX_ELEMENTS) {
            return null;
        }
        int[] ia = broadcastIndex(a.dims(), dims);
        int[] ib = broadcastIndex(b.dims(), dims);
        int n = ia.length;
        if (op.equals("Equal")) {
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = (a.isFloat() ? a.floats()[ia[i]] == b.floats()[ib[i]] : a.ints()[ia[i]] == b.ints()[ib[i]]) ? 1 : 0;
            }
            return new Small(DataType.BOOL, dims, out, null);
        }
        if (a.isFloat()) {
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                float x = a.floats()[ia[i]];
                float y = b.floats()[ib[i]];
                out[i] = switch (op) {
                    case "Add" -> x + y;
                    case "Sub" -> x - y;
                    case "Mul" -> x * y;
                    default -> x / y;
                };
            }
            return new Small(a.type(), dims, null, out);
        }
        if (a.type() == DataType.BOOL) {
            return null;
        }
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            long x = a.ints()[ia[i]];
            long y = b.ints()[ib[i]];
            if (op.equals("Div") && y == 0) {
                return null;
            }
            out[i] = switch (op) {
                case "Add" -> x + y;
                case "Sub" -> x - y;
                case "Mul" -> x * y;
                default -> x / y;
            };
        }
        return new Small(a.type(), dims, out, null);
    }

    private static Small sqrt(Small x) {
        if (!x.isFloat()) {
            return null;
        }
        float[] out = new float[x.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) Math.sqrt(x.floats()[i]);
        }
        return new Small(x.type(), x.dims(), null, out);
    }

    private static Small where(Small cond, Small x, Small y) {
        long[] dims = broadcast(cond.dims(), x.dims());
        dims = dims == null ? null : broadcast(dims, y.dims());
        if (dims == null || cond.type() != DataType.BOOL || x.type() != y.type() || numel(dims) > MAX_ELEMENTS) {
            return null;
        }
        int[] ic = broadcastIndex(cond.dims(), dims);
        int[] ix = broadcastIndex(x.dims(), dims);
        int[] iy = broadcastIndex(y.dims(), dims);
        Small both = x.isFloat()
                ? new Small(x.type(), dims, null, concatFloats(List.of(x, y)))
                : new Small(x.type(), dims, concatLongs(x.ints(), y.ints()), null);
        int[] index = new int[ic.length];
        for (int i = 0; i < index.length; i++) {
            index[i] = cond.ints()[ic[i]] != 0 ? ix[i] : x.size() + iy[i];
        }
        return take(both, x.type(), dims, index);
    }

    private static long[] concatLongs(long[] a, long[] b) {
        long[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static Small constantOfShape(Small shape, TensorData value) {
        long[] dims = vectorInts(shape);
        if (dims == null || Arrays.stream(dims).anyMatch(d -> d < 0) || numel(dims) > MAX_ELEMENTS) {
            return null;
        }
        Small fill = value == null ? new Small(DataType.FLOAT, new long[] {1}, null, new float[] {0}) : read(value);
        return fill == null || fill.size() != 1 ? null : take(fill, fill.type(), dims, new int[(int) numel(dims)]);
    }

    private static Small expand(Small x, Small shape) {
        long[] target = vectorInts(shape);
        if (target == null || Arrays.stream(target).anyMatch(d -> d < 0)) {
            return null;
        }
        long[] dims = broadcast(x.dims(), target);
        if (dims == null || numel(dims) > MAX_ELEMENTS) {
            return null;
        }
        return take(x, x.type(), dims, broadcastIndex(x.dims(), dims));
    }

    private static Small reshape(Small x, Small shape, boolean allowZero) {
        long[] requested = vectorInts(shape);
        if (requested == null || Arrays.stream(requested).anyMatch(d -> d < -1)
                || Arrays.stream(requested).filter(d -> d == -1).count() > 1) {
            return null;
        }
        long[] dims = requested.clone();
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] == 0 && !allowZero) {
                if (i >= x.dims().length) {
                    return null;
                }
                dims[i] = x.dims()[i];
            }
            if (dims[i] == -1) {
                inferred = i;
            } else {
                known *= dims[i];
            }
        }
        if (inferred >= 0) {
            if (known == 0 || x.size() % known != 0) {
                return null;
            }
            dims[inferred] = x.size() / known;
        }
        return numel(dims) == x.size() ? new Small(x.type(), dims, x.ints(), x.floats()) : null;
    }
}
