package dev.sdrt.runtime.scheduler;

import java.util.Random;

/** Random vectors and error measures for the scheduler tests. */
final class TestVectors {

    static final int LENGTH = 64;

    private TestVectors() {
    }

    static double[] gaussian(Random random) {
        double[] values = new double[LENGTH];
        for (int i = 0; i < LENGTH; i++) {
            values[i] = random.nextGaussian();
        }
        return values;
    }

    /** max |actual − expected| / max |expected|. */
    static double relativeError(double[] expected, double[] actual) {
        double maxDifference = 0;
        double maxMagnitude = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDifference = Math.max(maxDifference, Math.abs(actual[i] - expected[i]));
            maxMagnitude = Math.max(maxMagnitude, Math.abs(expected[i]));
        }
        return maxDifference / maxMagnitude;
    }

    /** A stand-in denoiser whose output depends on the input and the step, as a real one would. */
    static double[] fakeModel(double[] modelInput, int step) {
        double[] out = new double[modelInput.length];
        for (int k = 0; k < out.length; k++) {
            out[k] = 0.4 * modelInput[k] + 0.7 * Math.sin(1.3 * step + 0.37 * k);
        }
        return out;
    }

    /**
     * What a perfect denoiser returns for a sample of {@code x0} noised by {@code noise} at the
     * plan's σ: for flow matching the velocity v = z − x0; otherwise ε = z, or for v-prediction
     * v = α·z − σ_vp·x0 on the variance-preserving sample the model sees, α = 1/√(σ² + 1) and
     * σ_vp = σ·α (the Euler samplers scale their variance-exploding sample to it).
     */
    static double[] perfectOutput(SampleSpace space, PredictionType type, double sigma, double[] x0, double[] noise) {
        double alpha = 1 / Math.sqrt(sigma * sigma + 1);
        double[] out = new double[x0.length];
        for (int k = 0; k < out.length; k++) {
            if (space == SampleSpace.RECTIFIED_FLOW) {
                out[k] = noise[k] - x0[k];
            } else if (type == PredictionType.EPSILON) {
                out[k] = noise[k];
            } else {
                out[k] = alpha * noise[k] - sigma * alpha * x0[k];
            }
        }
        return out;
    }

    static double[] scaled(double factor, double[] values) {
        double[] result = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            result[i] = factor * values[i];
        }
        return result;
    }
}
