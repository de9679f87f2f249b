package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.util.Random;

/**
 * Seeded random tensors for benchmarks: latency does not depend on the values, but NaNs or denormals
 * could, so floats are uniform in [-1, 1), timesteps in [0, 1000), token ids in [0, 49408) (or a
 * smaller bound, for models with a smaller vocabulary).
 */
public final class RandomInputs {

    private RandomInputs() {}

    /** Token ids below CLIP's vocabulary size (49408). */
    public static Tensor forInput(String name, DType dtype, long[] shape, Random random) {
        return forInput(name, dtype, shape, random, 49408);
    }

    /** As {@link #forInput(String, DType, long[], Random)}, integer inputs (token ids) below {@code idBound}. */
    public static Tensor forInput(String name, DType dtype, long[] shape, Random random, int idBound) {
        int count = Math.toIntExact(Tensor.numElements(shape));
        boolean timestep = name.startsWith("timestep");
        switch (dtype) {
            case FLOAT32, FLOAT16, BFLOAT16, FLOAT64 -> {
                float[] values = new float[count];
                for (int i = 0; i < count; i++) {
                    values[i] = timestep ? random.nextInt(1000) : random.nextFloat() * 2 - 1;
                }
                Tensor floats = Tensor.ofFloats(shape, values);
                return dtype == DType.FLOAT32 ? floats : floats.castTo(dtype);
            }
            case INT64 -> {
                long[] values = new long[count];
                for (int i = 0; i < count; i++) {
                    values[i] = random.nextInt(timestep ? 1000 : idBound);
                }
                return Tensor.ofLongs(shape, values);
            }
            case INT32 -> {
                int[] values = new int[count];
                for (int i = 0; i < count; i++) {
                    values[i] = random.nextInt(timestep ? 1000 : idBound);
                }
                return Tensor.ofInts(shape, values);
            }
            default -> {
                return Tensor.zeros(dtype, shape);
            }
        }
    }
}
