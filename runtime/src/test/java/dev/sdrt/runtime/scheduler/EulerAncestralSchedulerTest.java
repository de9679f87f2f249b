package dev.sdrt.runtime.scheduler;

import static dev.sdrt.runtime.scheduler.TestVectors.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class EulerAncestralSchedulerTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();

    @Test
    void stepsSplitIntoDescentAndFreshNoise() {
        SchedulePlan plan = new EulerAncestralScheduler(SD).plan(30);
        assertThat(plan.usesNoise()).isTrue();
        assertThat(plan.sigmas()).containsExactly(new EulerScheduler(SD).plan(30).sigmas());
        for (PlanStep step : plan.steps()) {
            assertThat(step.sigmaDown() * step.sigmaDown() + step.sigmaUp() * step.sigmaUp())
                    .isCloseTo(step.sigmaNext() * step.sigmaNext(), within(1e-12));
            assertThat(step.sigmaDown()).isLessThanOrEqualTo(step.sigmaNext());
            assertThat(step.noiseCoefficient()).isEqualTo(step.sigmaUp());
        }
        // The last step lands on σ = 0: no noise, straight to the denoised estimate.
        assertThat(plan.step(29).sigmaUp()).isEqualTo(0.0);
        assertThat(plan.step(29).sigmaDown()).isEqualTo(0.0);
    }

    @Test
    void epsilonStepMatchesAncestralEuler() {
        checkAgainstFormula(SD, 30);
    }

    @Test
    void vPredictionStepMatchesAncestralEuler() {
        checkAgainstFormula(SD.withPredictionType(PredictionType.V_PREDICTION), 12);
    }

    /**
     * k-diffusion's ancestral Euler with η = 1, written out: σ_up = √(σ_n²(σ² − σ_n²)/σ²),
     * σ_down = √(σ_n² − σ_up²), x_next = x + (σ_down − σ)·(x − x0)/σ + σ_up·z.
     */
    private static void checkAgainstFormula(SchedulerConfig config, int steps) {
        SchedulePlan plan = new EulerAncestralScheduler(config).plan(steps);
        double[] sigmas = plan.sigmas();
        Random random = new Random(13);
        for (int i = 0; i < steps; i++) {
            double sigma = sigmas[i];
            double next = sigmas[i + 1];
            double sigmaUp = Math.sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
            double sigmaDown = Math.sqrt(next * next - sigmaUp * sigmaUp);
            double cIn = 1 / Math.sqrt(sigma * sigma + 1);
            double[] x = TestVectors.scaled(Math.sqrt(sigma * sigma + 1), TestVectors.gaussian(random));
            double[] out = TestVectors.gaussian(random);
            double[] noise = TestVectors.gaussian(random);

            double[] expected = new double[x.length];
            for (int k = 0; k < x.length; k++) {
                double x0 = config.predictionType() == PredictionType.EPSILON
                        ? x[k] - sigma * out[k]
                        : cIn * cIn * x[k] - sigma * cIn * out[k];
                expected[k] = x[k] + (sigmaDown - sigma) * (x[k] - x0) / sigma + sigmaUp * noise[k];
            }

            plan.applyStep(i, x, out, null, noise);
            assertThat(relativeError(expected, x)).as("step %d", i).isLessThan(1e-12);
        }
    }
}
