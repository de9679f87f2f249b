package dev.sdrt.runtime.trt;

import java.util.Arrays;
import org.bytedeco.tensorrt.nvinfer.Dims64;

/** Conversions between TensorRT's Dims64 and Java {@code long[]} shapes (-1 marks a dynamic dimension). */
public final class TrtDims {

    /** TensorRT's Dims::MAX_DIMS. */
    public static final int MAX_RANK = 8;

    private TrtDims() {}

    /** The dimensions as an array; fails on TensorRT's "invalid dims" (nbDims = -1), e.g. for an unknown name. */
    public static long[] toArray(Dims64 dims, String what) {
        int rank = dims.nbDims();
        if (rank < 0 || rank > MAX_RANK) {
            throw new IllegalArgumentException("TensorRT returned no valid shape for " + what + " (nbDims = " + rank + ")");
        }
        long[] shape = new long[rank];
        for (int axis = 0; axis < rank; axis++) {
            shape[axis] = dims.d(axis);
        }
        return shape;
    }

    /** A new Dims64 holding {@code shape}. */
    public static Dims64 of(long... shape) {
        if (shape.length > MAX_RANK) {
            throw new IllegalArgumentException("TensorRT supports at most " + MAX_RANK + " dimensions, got " + Arrays.toString(shape));
        }
        Dims64 dims = new Dims64();
        dims.nbDims(shape.length);
        for (int axis = 0; axis < shape.length; axis++) {
            dims.d(axis, shape[axis]);
        }
        return dims;
    }
}
