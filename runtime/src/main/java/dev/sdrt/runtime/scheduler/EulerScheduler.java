package dev.sdrt.runtime.scheduler;

import java.util.ArrayList;
import java.util.List;

/**
 * Euler's method on the probability-flow ODE in the variance-exploding variable x = x0 + σ·ε
 * (Karras et al. 2022, algorithm 1 without churn): with d = (x − x0)/σ,
 * <pre>  x_next = x + (σ_next − σ)·d</pre>
 * σ runs over the training σ_t = √((1−ᾱ_t)/ᾱ_t), interpolated at the spaced (fractional)
 * timesteps, or over Karras σs, then 0. The model sees x/√(σ² + 1), the variance-preserving sample.
 */
public final class EulerScheduler implements Scheduler {

    private final SchedulerConfig config;
    private final NoiseSchedule schedule;

    public EulerScheduler(SchedulerConfig config) {
        this.config = config;
        this.schedule = NoiseSchedule.of(config);
    }

    @Override
    public SchedulerConfig config() {
        return config;
    }

    @Override
    public SchedulePlan plan(int steps) {
        Trajectory trajectory = Trajectory.of(config, schedule, steps, config.useKarrasSigmas());
        List<PlanStep> plan = new ArrayList<>(steps);
        for (int i = 0; i < steps; i++) {
            double sigma = trajectory.sigmas()[i];
            double sigmaNext = trajectory.sigmas()[i + 1];
            LinearForm denoised = config.predictionType().denoisedFromVarianceExploding(sigma);
            plan.add(PlanStep.deterministic(trajectory.timesteps()[i], sigma, sigmaNext, inputScale(sigma),
                    eulerUpdate(sigma, sigmaNext, denoised), denoised));
        }
        return new SchedulePlan(plan, trajectory.initNoiseSigma(), SampleSpace.VARIANCE_EXPLODING);
    }

    /** 1/√(σ² + 1): the variance-exploding sample scaled to the variance-preserving one. */
    static double inputScale(double sigma) {
        return 1 / Math.sqrt(sigma * sigma + 1);
    }

    /**
     * x + (σ_to − σ)·(x − x0)/σ with x0 = p·x + q·out, collected as a·x + b·out.
     */
    static LinearForm eulerUpdate(double sigma, double sigmaTo, LinearForm denoised) {
        double slope = (sigmaTo - sigma) / sigma;
        return new LinearForm(1 + slope * (1 - denoised.sampleCoefficient()), -slope * denoised.outputCoefficient());
    }

    /**
     * The timesteps and σs (N + 1, ending in 0) that the Euler-family samplers step through, and the
     * scale of the initial noise.
     */
    record Trajectory(double[] timesteps, double[] sigmas, double initNoiseSigma) {

        static Trajectory of(SchedulerConfig config, NoiseSchedule schedule, int steps, boolean karras) {
            double[] trainingSigmas = schedule.sigmas();
            double[] timesteps = config.timestepSpacingOr(TimestepSpacing.LINSPACE)
                    .timesteps(config.numTrainTimesteps(), steps, config.stepsOffset());
            double[] sigmas = new double[steps + 1];
            for (int i = 0; i < steps; i++) {
                sigmas[i] = ScheduleMath.interpolate(timesteps[i], trainingSigmas);
            }
            if (karras) {
                double[] karrasSigmas = ScheduleMath.karrasSigmas(sigmas[0], sigmas[steps - 1], steps);
                double[] logSigmas = ScheduleMath.logOf(trainingSigmas);
                for (int i = 0; i < steps; i++) {
                    sigmas[i] = karrasSigmas[i];
                    timesteps[i] = ScheduleMath.timestepForSigma(sigmas[i], logSigmas);
                }
            }
            sigmas[steps] = 0;

            double maxSigma = 0;
            for (double sigma : sigmas) {
                maxSigma = Math.max(maxSigma, sigma);
            }
            // diffusers keeps the older √(σ_max² + 1), the standard deviation of x0 + σ·ε for
            // unit-variance x0, with leading spacing, and σ_max with the others; matched so that
            // the same seed gives the same image.
            boolean leading = config.timestepSpacingOr(TimestepSpacing.LINSPACE) == TimestepSpacing.LEADING;
            double initNoiseSigma = leading ? Math.sqrt(maxSigma * maxSigma + 1) : maxSigma;
            return new Trajectory(timesteps, sigmas, initNoiseSigma);
        }
    }
}
