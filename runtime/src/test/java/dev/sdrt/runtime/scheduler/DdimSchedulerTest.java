package dev.sdrt.runtime.scheduler;

import static dev.sdrt.runtime.scheduler.TestVectors.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class DdimSchedulerTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();
    private static final NoiseSchedule SCHEDULE = NoiseSchedule.of(SD);

    @Test
    void leadingTimestepsWithStepsOffset() {
        SchedulePlan plan = new DdimScheduler(SD).plan(50);
        assertThat(plan.size()).isEqualTo(50);
        assertThat(plan.timesteps()[0]).isEqualTo(981);
        assertThat(plan.timesteps()[1]).isEqualTo(961);
        assertThat(plan.timesteps()[49]).isEqualTo(1);
        assertThat(plan.initNoiseSigma()).isEqualTo(1.0);
        assertThat(plan.column(PlanStep::inputScale)).containsOnly(1.0);
        assertThat(plan.usesNoise()).isFalse();
        assertThat(plan.usesPreviousDenoised()).isFalse();
    }

    @Test
    void sigmasAreTheVarianceExplodingLevelsOfTheTimesteps() {
        SchedulePlan plan = new DdimScheduler(SD).plan(50);
        assertThat(plan.step(0).sigma()).isCloseTo(SCHEDULE.sigma(981), within(1e-12));
        assertThat(plan.step(0).sigmaNext()).isCloseTo(SCHEDULE.sigma(961), within(1e-12));
        // From t = 1 the jump of 20 passes below 0: SD configs land on ᾱ_0, not on ᾱ = 1.
        assertThat(plan.step(49).sigmaNext()).isCloseTo(SCHEDULE.sigma(0), within(1e-15));
        SchedulePlan toOne = new DdimScheduler(new SchedulerConfig(1000, 0.00085, 0.012,
                BetaSchedule.SCALED_LINEAR, PredictionType.EPSILON, null, 1, false, 1.0, true)).plan(50);
        assertThat(toOne.step(49).sigmaNext()).isEqualTo(0.0);
    }

    @Test
    void linspaceTimestepsAreRounded() {
        SchedulePlan plan = new DdimScheduler(SD.withTimestepSpacing(TimestepSpacing.LINSPACE)).plan(50);
        assertThat(plan.timesteps()[0]).isEqualTo(999);
        assertThat(plan.timesteps()[1]).isEqualTo(Math.rint(999 - 999.0 / 49));
        assertThat(plan.timesteps()[49]).isEqualTo(0);
    }

    @Test
    void epsilonStepMatchesTheDdimFormula() {
        checkAgainstFormula(SD, 50);
        checkAgainstFormula(SD.withTimestepSpacing(TimestepSpacing.TRAILING), 7);
    }

    @Test
    void vPredictionStepMatchesTheDdimFormula() {
        checkAgainstFormula(SD.withPredictionType(PredictionType.V_PREDICTION), 50);
        checkAgainstFormula(SD.withPredictionType(PredictionType.V_PREDICTION)
                .withTimestepSpacing(TimestepSpacing.LINSPACE), 13);
    }

    @Test
    void rejectsTimestepsPastTheTrainingRange() {
        // Leading with 1000 steps and offset 1 would need t = 1000.
        assertThatThrownBy(() -> new DdimScheduler(SD).plan(1000)).isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * Song et al. 2021, eq. 12 with η = 0, written out: x0 = (x − √(1−ᾱ_t)·ε)/√ᾱ_t and
     * x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε; for v-prediction x0 = √ᾱ_t·x − √(1−ᾱ_t)·v and
     * ε = √ᾱ_t·v + √(1−ᾱ_t)·x.
     */
    private static void checkAgainstFormula(SchedulerConfig config, int steps) {
        SchedulePlan plan = new DdimScheduler(config).plan(steps);
        Random random = new Random(7);
        int stride = 1000 / steps;
        for (int i = 0; i < steps; i++) {
            int t = (int) plan.timesteps()[i];
            double alphaT = SCHEDULE.alphaCumprod(t);
            double alphaPrev = t - stride >= 0 ? SCHEDULE.alphaCumprod(t - stride) : SCHEDULE.alphaCumprod(0);
            double[] x = TestVectors.gaussian(random);
            double[] out = TestVectors.gaussian(random);

            double[] expectedNext = new double[x.length];
            double[] expectedDenoised = new double[x.length];
            for (int k = 0; k < x.length; k++) {
                double x0;
                double eps;
                if (config.predictionType() == PredictionType.EPSILON) {
                    eps = out[k];
                    x0 = (x[k] - Math.sqrt(1 - alphaT) * eps) / Math.sqrt(alphaT);
                } else {
                    x0 = Math.sqrt(alphaT) * x[k] - Math.sqrt(1 - alphaT) * out[k];
                    eps = Math.sqrt(alphaT) * out[k] + Math.sqrt(1 - alphaT) * x[k];
                }
                expectedDenoised[k] = x0;
                expectedNext[k] = Math.sqrt(alphaPrev) * x0 + Math.sqrt(1 - alphaPrev) * eps;
            }

            double[] denoised = new double[x.length];
            plan.applyStep(i, x, out, denoised, null);
            assertThat(relativeError(expectedNext, x)).as("step %d", i).isLessThan(1e-12);
            assertThat(relativeError(expectedDenoised, denoised)).as("step %d", i).isLessThan(1e-12);
        }
    }
}
