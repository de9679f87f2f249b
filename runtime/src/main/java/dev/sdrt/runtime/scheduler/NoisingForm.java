package dev.sdrt.runtime.scheduler;

/**
 * A noised sample written as {@code signalCoefficient · x0 + noiseCoefficient · z}, with x0 the clean
 * latent and z standard normal noise: what {@link SampleSpace#noising} gives for one noise level.
 * Kept apart from {@link LinearForm}, whose two terms are the current sample and the model output.
 */
public record NoisingForm(double signalCoefficient, double noiseCoefficient) {

    public double apply(double x0, double noise) {
        return signalCoefficient * x0 + noiseCoefficient * noise;
    }
}
