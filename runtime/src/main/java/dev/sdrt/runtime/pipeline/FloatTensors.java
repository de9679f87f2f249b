package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.util.Arrays;
import java.util.List;

/** The few float32 tensor joins the pipeline assembles its inputs with. */
final class FloatTensors {
    private FloatTensors() {
    }

    /**
     * Joins float32 tensors along {@code axis}; all other dimensions must agree. SDXL puts its two
     * text encoders' states side by side (last axis), SD3 appends its T5 tokens (axis 1), and every
     * request's inputs stack along the batch (axis 0).
     */
    static Tensor concat(List<Tensor> parts, int axis) {
        long[] first = parts.get(0).shape();
        if (axis < 0 || axis >= first.length) {
            throw new IllegalArgumentException("axis " + axis + " out of range for shape " + Tensor.formatShape(first));
        }
        long[] shape = first.clone();
        shape[axis] = 0;
        for (Tensor t : parts) {
            long[] s = t.shape();
            if (t.dtype() != DType.FLOAT32 || s.length != first.length) {
                throw new IllegalArgumentException("cannot join " + t.dtype() + Tensor.formatShape(s) + " with float32"
                        + Tensor.formatShape(first));
            }
            for (int d = 0; d < s.length; d++) {
                if (d != axis && s[d] != first[d]) {
                    throw new IllegalArgumentException("cannot join " + Tensor.formatShape(s) + " with "
                            + Tensor.formatShape(first) + " along axis " + axis);
                }
            }
            shape[axis] += s[axis];
        }
        // Rows of the result: everything before the axis; each part contributes one contiguous run per row.
        long rows = 1;
        for (int d = 0; d < axis; d++) {
            rows *= shape[d];
        }
        float[] out = new float[Math.toIntExact(Tensor.numElements(shape))];
        int position = 0;
        float[][] data = parts.stream().map(Tensor::toFloatArray).toArray(float[][]::new);
        for (int r = 0; r < rows; r++) {
            for (float[] part : data) {
                int run = (int) (part.length / rows);
                System.arraycopy(part, r * run, out, position, run);
                position += run;
            }
        }
        return Tensor.ofFloats(shape, out);
    }

    /** A float32 tensor of zeros shaped like {@code t} except {@code size} along {@code axis}. */
    static Tensor zerosLike(Tensor t, int axis, long size) {
        long[] shape = t.shape();
        shape[axis] = size;
        return Tensor.ofFloats(shape, new float[Math.toIntExact(Tensor.numElements(shape))]);
    }

    /** A float32 tensor of zeros shaped like {@code t}. */
    static Tensor zerosLike(Tensor t) {
        long[] shape = t.shape();
        return Tensor.ofFloats(shape, new float[Math.toIntExact(Tensor.numElements(shape))]);
    }

    static Tensor scalarRow(float... values) {
        return Tensor.ofFloats(new long[] {1, values.length}, Arrays.copyOf(values, values.length));
    }
}
