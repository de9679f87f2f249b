package dev.sdrt.runtime.scheduler;

import java.util.ArrayList;
import java.util.List;

/**
 * Deterministic DDIM (Song et al. 2021, eq. 12 with η = 0): from the model's estimates x0 and ε at
 * timestep t, jump to the previous timestep t' = t − ⌊T/N⌋ along
 * <pre>  x_t' = √ᾱ_t'·x0 + √(1 − ᾱ_t')·ε</pre>
 * The last step lands on ᾱ = 1 or ᾱ_0 (set_alpha_to_one). The sample is variance-preserving, so the
 * model input is the sample itself and the initial noise has unit scale.
 */
public final class DdimScheduler implements Scheduler {

    private final SchedulerConfig config;
    private final NoiseSchedule schedule;

    public DdimScheduler(SchedulerConfig config) {
        this.config = config;
        this.schedule = NoiseSchedule.of(config);
    }

    @Override
    public SchedulerConfig config() {
        return config;
    }

    @Override
    public SchedulePlan plan(int steps) {
        int trainSteps = config.numTrainTimesteps();
        double[] timesteps = config.timestepSpacingOr(TimestepSpacing.LEADING)
                .timesteps(trainSteps, steps, config.stepsOffset());
        double finalAlphaCumprod = config.setAlphaToOne() ? 1.0 : schedule.alphaCumprod(0);
        // The jump is ⌊T/N⌋ whatever the spacing, so with linspace spacing it may not land exactly
        // on the next step's timestep; that is DDIM as diffusers defines it.
        int stride = trainSteps / steps;

        List<PlanStep> plan = new ArrayList<>(steps);
        for (double rawTimestep : timesteps) {
            int t = (int) Math.rint(rawTimestep);
            if (t >= trainSteps) {
                throw new IllegalArgumentException("timestep " + t + " is past the training range; lower"
                        + " steps_offset or the number of steps");
            }
            int previous = t - stride;
            double alphaCumprod = schedule.alphaCumprod(t);
            double previousAlphaCumprod = previous >= 0 ? schedule.alphaCumprod(previous) : finalAlphaCumprod;

            double alpha = Math.sqrt(alphaCumprod);
            double sigma = Math.sqrt(1 - alphaCumprod);
            LinearForm denoised = config.predictionType().denoisedFromVariancePreserving(alpha, sigma);
            LinearForm noise = config.predictionType().noiseFromVariancePreserving(alpha, sigma);
            double alphaPrevious = Math.sqrt(previousAlphaCumprod);
            double sigmaPrevious = Math.sqrt(1 - previousAlphaCumprod);
            LinearForm update = new LinearForm(
                    alphaPrevious * denoised.sampleCoefficient() + sigmaPrevious * noise.sampleCoefficient(),
                    alphaPrevious * denoised.outputCoefficient() + sigmaPrevious * noise.outputCoefficient());

            plan.add(PlanStep.deterministic(t, sigma / alpha, sigmaPrevious / alphaPrevious, 1.0, update, denoised));
        }
        return new SchedulePlan(plan, 1.0, SampleSpace.VARIANCE_PRESERVING);
    }
}
