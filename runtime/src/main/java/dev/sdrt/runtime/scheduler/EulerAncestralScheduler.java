package dev.sdrt.runtime.scheduler;

import java.util.ArrayList;
import java.util.List;

/**
 * Ancestral Euler (k-diffusion's sample_euler_ancestral, η = 1): each step from σ to σ_next first
 * takes an Euler step down to σ_down, then adds fresh noise of standard deviation σ_up, where
 * <pre>  σ_up = √(σ_next²·(σ² − σ_next²)/σ²),   σ_down = √(σ_next² − σ_up²)</pre>
 * so the sample ends at noise level σ_next with the DDPM posterior's variance. Timesteps and σs as
 * {@link EulerScheduler}; Karras σs are not used (diffusers' ancestral Euler has no such option).
 */
public final class EulerAncestralScheduler implements Scheduler {

    private final SchedulerConfig config;
    private final NoiseSchedule schedule;

    public EulerAncestralScheduler(SchedulerConfig config) {
        this.config = config;
        this.schedule = NoiseSchedule.of(config);
    }

    @Override
    public SchedulerConfig config() {
        return config;
    }

    @Override
    public SchedulePlan plan(int steps) {
        EulerScheduler.Trajectory trajectory = EulerScheduler.Trajectory.of(config, schedule, steps, false);
        List<PlanStep> plan = new ArrayList<>(steps);
        for (int i = 0; i < steps; i++) {
            double sigma = trajectory.sigmas()[i];
            double sigmaNext = trajectory.sigmas()[i + 1];
            double sigmaUp = Math.sqrt(sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext) / (sigma * sigma));
            double sigmaDown = Math.sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp);
            LinearForm denoised = config.predictionType().denoisedFromVarianceExploding(sigma);
            LinearForm update = EulerScheduler.eulerUpdate(sigma, sigmaDown, denoised);
            plan.add(new PlanStep(trajectory.timesteps()[i], sigma, sigmaNext, sigmaUp, sigmaDown,
                    EulerScheduler.inputScale(sigma), update.sampleCoefficient(), update.outputCoefficient(),
                    0, sigmaUp, denoised.sampleCoefficient(), denoised.outputCoefficient()));
        }
        return new SchedulePlan(plan, trajectory.initNoiseSigma(), SampleSpace.VARIANCE_EXPLODING);
    }
}
