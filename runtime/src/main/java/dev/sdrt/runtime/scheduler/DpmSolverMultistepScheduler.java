package dev.sdrt.runtime.scheduler;

import java.util.ArrayList;
import java.util.List;

/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", algorithm 2, midpoint form), on the
 * variance-preserving sample x = α·x0 + σ·ε with α = 1/√(σ_ve² + 1), σ = σ_ve·α and
 * λ = log(α/σ). From step s to t, with h = λ_t − λ_s and x0_s the model's denoised estimate:
 * <pre>
 *   first order:  x_t = (σ_t/σ_s)·x − α_t·(e^(−h) − 1)·x0_s
 *   second order: x_t = (σ_t/σ_s)·x − α_t·(e^(−h) − 1)·((1 + 1/(2r))·x0_s − 1/(2r)·x0_prev),
 *                 r = (λ_s − λ_prev)/h
 * </pre>
 * The first step has no previous estimate and is first order (so is the first step of a
 * {@link SchedulePlan#startingAt} plan). The last step is first order too: it lands on σ = 0, where
 * h is infinite (this also covers lower_order_final, which diffusers applies below 15 steps). Timesteps are integers; σ is interpolated at them, or Karras σs from the largest
 * to the smallest training σ with timesteps rounded from them.
 */
public final class DpmSolverMultistepScheduler implements Scheduler {

    private final SchedulerConfig config;
    private final NoiseSchedule schedule;

    public DpmSolverMultistepScheduler(SchedulerConfig config) {
        this.config = config;
        this.schedule = NoiseSchedule.of(config);
    }

    @Override
    public SchedulerConfig config() {
        return config;
    }

    @Override
    public SchedulePlan plan(int steps) {
        double[] trainingSigmas = schedule.sigmas();
        double[] timesteps = timesteps(steps);
        double[] sigmas = new double[steps + 1];
        if (config.useKarrasSigmas()) {
            double[] karrasSigmas = ScheduleMath.karrasSigmas(
                    trainingSigmas[trainingSigmas.length - 1], trainingSigmas[0], steps);
            double[] logSigmas = ScheduleMath.logOf(trainingSigmas);
            for (int i = 0; i < steps; i++) {
                sigmas[i] = karrasSigmas[i];
                timesteps[i] = Math.rint(ScheduleMath.timestepForSigma(sigmas[i], logSigmas));
            }
        } else {
            for (int i = 0; i < steps; i++) {
                sigmas[i] = ScheduleMath.interpolate(timesteps[i], trainingSigmas);
            }
        }
        sigmas[steps] = 0;

        List<PlanStep> plan = new ArrayList<>(steps);
        for (int i = 0; i < steps; i++) {
            double sigmaVe = sigmas[i];
            double alphaS = 1 / Math.sqrt(sigmaVe * sigmaVe + 1);
            double sigmaS = sigmaVe * alphaS;
            double alphaT = 1 / Math.sqrt(sigmas[i + 1] * sigmas[i + 1] + 1);
            double sigmaT = sigmas[i + 1] * alphaT;
            double h = lambda(alphaT, sigmaT) - lambda(alphaS, sigmaS);
            // −α_t·(e^(−h) − 1), with expm1 for accuracy when h is small.
            double phi = -alphaT * Math.expm1(-h);
            LinearForm denoised = config.predictionType().denoisedFromVariancePreserving(alphaS, sigmaS);

            boolean firstOrder = i == 0 || i == steps - 1;
            double currentWeight = 1;
            double previousWeight = 0;
            if (!firstOrder) {
                double previousAlpha = 1 / Math.sqrt(sigmas[i - 1] * sigmas[i - 1] + 1);
                double hPrevious = lambda(alphaS, sigmaS) - lambda(previousAlpha, sigmas[i - 1] * previousAlpha);
                double r = hPrevious / h;
                currentWeight = 1 + 1 / (2 * r);
                previousWeight = -1 / (2 * r);
            }
            double sampleCoefficient = sigmaT / sigmaS + phi * currentWeight * denoised.sampleCoefficient();
            double outputCoefficient = phi * currentWeight * denoised.outputCoefficient();
            plan.add(new PlanStep(timesteps[i], sigmas[i], sigmas[i + 1], 0, sigmas[i + 1], 1.0,
                    sampleCoefficient, outputCoefficient, phi * previousWeight, 0,
                    denoised.sampleCoefficient(), denoised.outputCoefficient()));
        }
        return new SchedulePlan(plan, 1.0, SampleSpace.VARIANCE_PRESERVING);
    }

    private static double lambda(double alpha, double sigma) {
        return Math.log(alpha) - Math.log(sigma);
    }

    /**
     * Integer timesteps, descending. DPM-Solver spaces N + 1 points and drops the last (t = 0), so
     * linspace and leading differ from {@link TimestepSpacing#timesteps}; trailing is the same.
     */
    private double[] timesteps(int steps) {
        int trainSteps = config.numTrainTimesteps();
        TimestepSpacing spacing = config.timestepSpacingOr(TimestepSpacing.LINSPACE);
        if (steps < 1 || steps > trainSteps) {
            throw new IllegalArgumentException("steps must be in 1.." + trainSteps + ": " + steps);
        }
        double[] timesteps = new double[steps];
        switch (spacing) {
            case LINSPACE -> {
                double[] ascending = ScheduleMath.linspace(0, trainSteps - 1, steps + 1);
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = Math.rint(ascending[steps - i]);
                }
            }
            case LEADING -> {
                int stride = trainSteps / (steps + 1);
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = (double) (steps - i) * stride + config.stepsOffset();
                }
            }
            case TRAILING -> timesteps = spacing.timesteps(trainSteps, steps, config.stepsOffset());
        }
        return timesteps;
    }
}
