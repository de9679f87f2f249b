package dev.sdrt.runtime.scheduler;

/**
 * Everything one denoising step needs, computed on the host before the loop.
 *
 * <p>With x the current sample, out the model's output for {@code inputScale · x} at
 * {@link #timestep}, prev the denoised estimate kept from the step before, and z fresh standard
 * normal noise:
 * <pre>
 *   denoised = p·x + q·out
 *   x_next   = a·x + b·out + c·prev + d·z
 * </pre>
 * where a, b, c, d, p, q are {@link #sampleCoefficient}, {@link #outputCoefficient},
 * {@link #previousDenoisedCoefficient}, {@link #noiseCoefficient},
 * {@link #denoisedSampleCoefficient}, {@link #denoisedOutputCoefficient}. Every scheduler's
 * update, prediction type included, is this one affine form, so a device runs it without host
 * logic; c is non-zero only for multistep solvers, d only for ancestral samplers.
 *
 * @param timestep the value fed to the denoiser's timestep input
 * @param sigma noise level of the sample entering the step, in the scheduler's own parametrization
 *     (√((1−ᾱ)/ᾱ) for the DDPM family, the flow-matching σ for flow schedulers)
 * @param sigmaNext noise level of the sample the step produces
 * @param sigmaUp standard deviation of the fresh noise an ancestral step adds (0 otherwise)
 * @param sigmaDown the level the deterministic part of the step descends to; with sigmaUp it
 *     satisfies sigmaDown² + sigmaUp² = sigmaNext² for ancestral steps, and equals sigmaNext otherwise
 * @param inputScale factor from the sample to the model input
 */
public record PlanStep(
        double timestep,
        double sigma,
        double sigmaNext,
        double sigmaUp,
        double sigmaDown,
        double inputScale,
        double sampleCoefficient,
        double outputCoefficient,
        double previousDenoisedCoefficient,
        double noiseCoefficient,
        double denoisedSampleCoefficient,
        double denoisedOutputCoefficient) {

    /** A step without noise and without the previous estimate. */
    static PlanStep deterministic(double timestep, double sigma, double sigmaNext, double inputScale,
            LinearForm update, LinearForm denoised) {
        return new PlanStep(timestep, sigma, sigmaNext, 0, sigmaNext, inputScale,
                update.sampleCoefficient(), update.outputCoefficient(), 0, 0,
                denoised.sampleCoefficient(), denoised.outputCoefficient());
    }
}
