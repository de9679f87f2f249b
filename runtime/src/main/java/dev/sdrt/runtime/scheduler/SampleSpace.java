package dev.sdrt.runtime.scheduler;

/**
 * How a scheduler's sample relates to the clean latent x0 and standard normal noise z at the noise
 * level σ of {@link PlanStep#sigma()}, which is in that scheduler's own parametrization. Image to
 * image starts from this sample with x0 the encoded image (diffusers' {@code add_noise} for the
 * DDPM family, {@code scale_noise} for flow matching).
 */
public enum SampleSpace {

    /**
     * x = α·x0 + α·σ·z with α = 1/√(σ² + 1) and σ = √((1 − ᾱ)/ᾱ), i.e. √ᾱ·x0 + √(1 − ᾱ)·z (Ho et
     * al. 2020, eq. 4): DDIM and DPM-Solver++, whose model input is the sample itself.
     */
    VARIANCE_PRESERVING,

    /**
     * x = x0 + σ·z, the variance-preserving sample divided by α (Karras et al. 2022, table 1): the
     * Euler samplers, whose model sees x/√(σ² + 1).
     */
    VARIANCE_EXPLODING,

    /** x = (1 − σ)·x0 + σ·z (Esser et al. 2024, eq. 2): flow-matching Euler. */
    RECTIFIED_FLOW;

    /** The coefficients of x0 and z in the sample at noise level {@code sigma}. */
    public NoisingForm noising(double sigma) {
        return switch (this) {
            case VARIANCE_PRESERVING -> {
                double alpha = 1 / Math.sqrt(sigma * sigma + 1);
                yield new NoisingForm(alpha, alpha * sigma);
            }
            case VARIANCE_EXPLODING -> new NoisingForm(1, sigma);
            case RECTIFIED_FLOW -> new NoisingForm(1 - sigma, sigma);
        };
    }
}
