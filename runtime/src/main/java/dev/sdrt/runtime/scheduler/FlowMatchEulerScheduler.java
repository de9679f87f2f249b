package dev.sdrt.runtime.scheduler;

import java.util.ArrayList;
import java.util.List;

/**
 * Euler steps for rectified-flow models such as SD3 (Esser et al. 2024): the sample is
 * x = (1 − σ)·x0 + σ·ε, the model predicts the velocity v = ε − x0, and
 * <pre>  x_next = x + (σ_next − σ)·v,   x0 = x − σ·v</pre>
 * σ is spaced linearly in t = σ·T from σ_max = 1 to σ_min = shift(1/T), each value then warped by
 * the resolution shift (Esser et al. 2024, eq. 23), shift(σ) = s·σ/(1 + (s − 1)·σ), and ends at 0.
 * As in diffusers, σ_min is the shifted smallest training σ and is shifted once more with the rest.
 * The model sees the sample unscaled at timestep σ·T. The prediction type of the config is ignored:
 * these models always predict velocity.
 */
public final class FlowMatchEulerScheduler implements Scheduler {

    private final SchedulerConfig config;

    public FlowMatchEulerScheduler(SchedulerConfig config) {
        this.config = config;
    }

    @Override
    public SchedulerConfig config() {
        return config;
    }

    @Override
    public SchedulePlan plan(int steps) {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be positive: " + steps);
        }
        int trainSteps = config.numTrainTimesteps();
        double sigmaMax = shift(1.0);
        double sigmaMin = shift(1.0 / trainSteps);
        double[] unshiftedTimesteps = ScheduleMath.linspace(sigmaMax * trainSteps, sigmaMin * trainSteps, steps);
        double[] sigmas = new double[steps + 1];
        for (int i = 0; i < steps; i++) {
            sigmas[i] = shift(unshiftedTimesteps[i] / trainSteps);
        }
        sigmas[steps] = 0;

        List<PlanStep> plan = new ArrayList<>(steps);
        for (int i = 0; i < steps; i++) {
            double sigma = sigmas[i];
            double sigmaNext = sigmas[i + 1];
            plan.add(PlanStep.deterministic(sigma * trainSteps, sigma, sigmaNext, 1.0,
                    new LinearForm(1, sigmaNext - sigma), new LinearForm(1, -sigma)));
        }
        return new SchedulePlan(plan, 1.0, SampleSpace.RECTIFIED_FLOW);
    }

    private double shift(double sigma) {
        double s = config.shift();
        return s * sigma / (1 + (s - 1) * sigma);
    }
}
