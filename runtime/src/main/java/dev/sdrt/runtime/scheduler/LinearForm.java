package dev.sdrt.runtime.scheduler;

/**
 * A quantity written as {@code sampleCoefficient * x + outputCoefficient * modelOutput}, where x is
 * the current sample: how the schedulers express the denoised estimate and the noise estimate
 * without knowing the tensors.
 */
public record LinearForm(double sampleCoefficient, double outputCoefficient) {

    public double apply(double sample, double modelOutput) {
        return sampleCoefficient * sample + outputCoefficient * modelOutput;
    }
}
