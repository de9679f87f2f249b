package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Permute utilities of the channels-last pass: the NCHW↔NHWC perms, shapes and constants moved between layouts, value tests. */
final class Layouts {
    /** NCHW → NHWC: out[n,h,w,c] = in[n,c,h,w]. */
    static final long[] TO_NHWC = {0, 2, 3, 1};
    /** NHWC → NCHW. */
    static final long[] TO_NCHW = {0, 3, 1, 2};
    static final int NCHW = 0;
    static final int NHWC = 1;

    private Layouts() {
    }

    /** A computed (not constant) value known to be 4-D. */
    static boolean isAct4d(Value v) {
        return v != null && !Constants.isConstant(v) && v.shape() != null && v.shape().rank() == 4;
    }

    static boolean isFloat4d(Value v) {
        return v.shape() != null && v.shape().rank() == 4 && v.type() != null && v.type().isFloatingPoint();
    }

    /**
     * For a computed operand of rank below 4 with a static shape that broadcasts against NCHW
     * tensors: the shape that broadcasts the same way against NHWC ones, leading 1s dropped, when
     * the move is a reshape (the channel dimension is 1, or both spatial ones are); else null.
     */
    static long[] nhwcShape(Value v) {
        Shape s = v.shape();
        if (s == null || s.rank() >= 4 || !s.isFullyFixed()) {
            return null;
        }
        long[] dims = s.toArray();
        long[] padded = new long[4];
        Arrays.fill(padded, 1);
        System.arraycopy(dims, 0, padded, 4 - dims.length, dims.length);
        if (padded[1] != 1 && (padded[2] != 1 || padded[3] != 1)) {
            return null;
        }
        long[] moved = {padded[0], padded[2], padded[3], padded[1]};
        int lead = 0;
        while (lead < 3 && moved[lead] == 1) {
            lead++;
        }
        return Arrays.copyOfRange(moved, lead, 4);
    }

    static boolean isSingleElement(Value v) {
        return v.shape() != null && v.shape().numElements() == 1;
    }

    static boolean isOne(Dim d) {
        return d.isFixed() && d.value() == 1;
    }

    static boolean isPlainShape(Node n) {
        return n.is("Shape") && !n.hasAttr("start") && !n.hasAttr("end");
    }

    static boolean allOnes(long[] dims) {
        for (long d : dims) {
            if (d != 1) {
                return false;
            }
        }
        return true;
    }

    static boolean allEqual(float[] values, float v) {
        for (float f : values) {
            if (f != v) {
                return false;
            }
        }
        return true;
    }

    static boolean isPerm(Node transpose, long[] perm) {
        return Arrays.equals(perm(transpose, perm.length), perm);
    }

    /** A Transpose's perm; absent means reversed axes. */
    static long[] perm(Node transpose, int rank) {
        long[] perm = transpose.attrInts("perm");
        if (perm != null) {
            return perm;
        }
        long[] reversed = new long[rank];
        for (int i = 0; i < rank; i++) {
            reversed[i] = rank - 1 - i;
        }
        return reversed;
    }

    /** out.dims[i] = in.dims[perm[i]]; null stays null. */
    static Shape permute(Shape shape, long[] perm) {
        if (shape == null || shape.rank() != perm.length) {
            return shape;
        }
        List<Dim> dims = new ArrayList<>();
        for (long p : perm) {
            dims.add(shape.dim((int) p));
        }
        return Shape.of(dims);
    }

    /** Elements {@code order[i]} of a rank-1 tensor. */
    static TensorData gatherVector(TensorData v, long[] order) {
        int elem = v.type().byteSize();
        ByteBuffer in = v.bytes();
        ByteBuffer out = ByteBuffer.allocate(order.length * elem).order(ByteOrder.LITTLE_ENDIAN);
        for (long o : order) {
            for (int b = 0; b < elem; b++) {
                out.put(in.get((int) o * elem + b));
            }
        }
        return TensorData.of(v.type(), new long[] {order.length}, out.flip());
    }

    /** The tensor transposed by {@code perm} (any element type). */
    static TensorData permuteData(TensorData data, long[] perm) {
        long[] dims = data.dims();
        int rank = dims.length;
        if (perm.length != rank) {
            return data;
        }
        long[] outDims = new long[rank];
        for (int i = 0; i < rank; i++) {
            outDims[i] = dims[(int) perm[i]];
        }
        int elem = data.type().byteSize();
        int n = Math.toIntExact(data.numElements());
        long[] inStrides = new long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            inStrides[i] = s;
            s *= dims[i];
        }
        ByteBuffer in = data.bytes();
        ByteBuffer out = ByteBuffer.allocate(n * elem).order(ByteOrder.LITTLE_ENDIAN);
        long[] index = new long[rank];
        for (int k = 0; k < n; k++) {
            long src = 0;
            for (int i = 0; i < rank; i++) {
                src += index[i] * inStrides[(int) perm[i]];
            }
            for (int b = 0; b < elem; b++) {
                out.put(in.get((int) (src * elem) + b));
            }
            for (int i = rank - 1; i >= 0; i--) {
                if (++index[i] < outDims[i]) {
                    break;
                }
                index[i] = 0;
            }
        }
        return TensorData.of(data.type(), outDims, out.flip());
    }
}
