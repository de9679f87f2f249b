package dev.sdrt.runtime.pipeline;

/** Classifier-free guidance on the host, for a denoiser output laid out [uncond..., cond...] on the batch axis. */
public final class ClassifierFreeGuidance {
    private ClassifierFreeGuidance() {
    }

    /** uncond + g·(cond − uncond) for the first and second halves of {@code out}, each {@code half} long. */
    public static float[] combine(float[] out, int half, double scale) {
        float[] guided = new float[half];
        for (int i = 0; i < half; i++) {
            float u = out[i];
            float c = out[half + i];
            guided[i] = (float) (u + scale * (c - u));
        }
        return guided;
    }
}
