package dev.sdrt.runtime.pipeline;

import java.util.SplittableRandom;

/**
 * Seeded standard normal noise (Box-Muller over SplittableRandom): the same seed gives the same
 * latents in the pipeline, in calibration and in tests.
 */
public final class GaussianNoise {
    private final SplittableRandom random;

    public GaussianNoise(long seed) {
        this(new SplittableRandom(seed));
    }

    /** Draws from {@code random}, which the caller may also use for other values. */
    public GaussianNoise(SplittableRandom random) {
        this.random = random;
    }

    public float[] next(int count) {
        float[] out = new float[count];
        for (int i = 0; i < count; i += 2) {
            double u1 = 1.0 - random.nextDouble(); // (0, 1]: log stays finite
            double u2 = random.nextDouble();
            double r = Math.sqrt(-2 * Math.log(u1));
            out[i] = (float) (r * Math.cos(2 * Math.PI * u2));
            if (i + 1 < count) {
                out[i + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
            }
        }
        return out;
    }
}
