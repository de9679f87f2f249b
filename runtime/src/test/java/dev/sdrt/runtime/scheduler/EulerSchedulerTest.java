package dev.sdrt.runtime.scheduler;

import static dev.sdrt.runtime.scheduler.TestVectors.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class EulerSchedulerTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();
    private static final NoiseSchedule SCHEDULE = NoiseSchedule.of(SD);

    /** σ at a fractional timestep, interpolated linearly between the neighbouring training σs. */
    private static double sigmaAt(double timestep) {
        int low = (int) Math.floor(timestep);
        if (low == 999) {
            return SCHEDULE.sigma(999);
        }
        double fraction = timestep - low;
        return (1 - fraction) * SCHEDULE.sigma(low) + fraction * SCHEDULE.sigma(low + 1);
    }

    @Test
    void linspaceTimestepsAndInterpolatedSigmas() {
        SchedulePlan plan = new EulerScheduler(SD).plan(50);
        double[] timesteps = plan.timesteps();
        double[] sigmas = plan.sigmas();
        assertThat(timesteps[0]).isEqualTo(999.0);
        assertThat(timesteps[1]).isCloseTo(999 - 999.0 / 49, within(1e-12));
        assertThat(timesteps[49]).isEqualTo(0.0);
        assertThat(sigmas).hasSize(51);
        for (int i = 0; i < 50; i++) {
            assertThat(sigmas[i]).as("sigma %d", i).isCloseTo(sigmaAt(timesteps[i]), within(1e-12));
        }
        assertThat(sigmas[0]).isCloseTo(14.6146, within(1e-4));
        assertThat(sigmas[50]).isEqualTo(0.0);
        // linspace: the initial noise has σ_max.
        assertThat(plan.initNoiseSigma()).isEqualTo(sigmas[0]);
    }

    @Test
    void modelInputIsScaledToVariancePreserving() {
        SchedulePlan plan = new EulerScheduler(SD).plan(20);
        for (PlanStep step : plan.steps()) {
            assertThat(step.inputScale()).isCloseTo(1 / Math.sqrt(step.sigma() * step.sigma() + 1), within(1e-15));
        }
    }

    @Test
    void leadingSpacingScalesTheInitialNoiseByTheTotalVariance() {
        SchedulePlan plan = new EulerScheduler(SD.withTimestepSpacing(TimestepSpacing.LEADING)).plan(50);
        assertThat(plan.timesteps()[0]).isEqualTo(981.0);
        double sigmaMax = SCHEDULE.sigma(981);
        assertThat(plan.step(0).sigma()).isCloseTo(sigmaMax, within(1e-12));
        assertThat(plan.initNoiseSigma()).isCloseTo(Math.sqrt(sigmaMax * sigmaMax + 1), within(1e-12));
    }

    @Test
    void karrasSigmasDescendFromSigmaMaxToSigmaMin() {
        int steps = 25;
        SchedulePlan plan = new EulerScheduler(SD.withKarrasSigmas(true)).plan(steps);
        double[] sigmas = plan.sigmas();
        double sigmaMax = SCHEDULE.sigma(999);
        double sigmaMin = SCHEDULE.sigma(0);
        assertThat(sigmas[0]).isCloseTo(sigmaMax, within(1e-12));
        assertThat(sigmas[steps - 1]).isCloseTo(sigmaMin, within(1e-12));
        assertThat(sigmas[steps]).isEqualTo(0.0);
        for (int i = 1; i <= steps; i++) {
            assertThat(sigmas[i]).isLessThan(sigmas[i - 1]);
        }
        // EDM eq. 5 at i = 12 of 25.
        double root = Math.pow(sigmaMax, 1 / 7.0) + 12 / 24.0 * (Math.pow(sigmaMin, 1 / 7.0) - Math.pow(sigmaMax, 1 / 7.0));
        assertThat(sigmas[12]).isCloseTo(Math.pow(root, 7), within(1e-12));

        double[] timesteps = plan.timesteps();
        assertThat(timesteps[0]).isCloseTo(999.0, within(1e-9));
        assertThat(timesteps[steps - 1]).isCloseTo(0.0, within(1e-9));
        for (int i = 1; i < steps; i++) {
            assertThat(timesteps[i]).isLessThan(timesteps[i - 1]);
        }
        // The timestep is where the Karras σ falls between training σs, interpolated in log σ.
        int low = (int) Math.floor(timesteps[12]);
        double weight = timesteps[12] - low;
        double logSigma = (1 - weight) * Math.log(SCHEDULE.sigma(low)) + weight * Math.log(SCHEDULE.sigma(low + 1));
        assertThat(logSigma).isCloseTo(Math.log(sigmas[12]), within(1e-12));
    }

    @Test
    void epsilonStepMatchesEulersMethod() {
        checkAgainstFormula(SD, 30);
        checkAgainstFormula(SD.withKarrasSigmas(true), 9);
    }

    @Test
    void vPredictionStepMatchesEulersMethod() {
        checkAgainstFormula(SD.withPredictionType(PredictionType.V_PREDICTION), 30);
        checkAgainstFormula(SD.withPredictionType(PredictionType.V_PREDICTION)
                .withTimestepSpacing(TimestepSpacing.TRAILING), 4);
    }

    /**
     * Karras et al. 2022, algorithm 1 without churn, written out: the model sees c_in·x with
     * c_in = 1/√(σ²+1); x0 = x − σ·ε, or for v-prediction x0 = c_in²·x − σ·c_in·v; then
     * d = (x − x0)/σ and x_next = x + (σ_next − σ)·d.
     */
    private static void checkAgainstFormula(SchedulerConfig config, int steps) {
        SchedulePlan plan = new EulerScheduler(config).plan(steps);
        double[] sigmas = plan.sigmas();
        Random random = new Random(11);
        for (int i = 0; i < steps; i++) {
            double sigma = sigmas[i];
            double cIn = 1 / Math.sqrt(sigma * sigma + 1);
            double[] x = TestVectors.scaled(Math.sqrt(sigma * sigma + 1), TestVectors.gaussian(random));
            double[] out = TestVectors.gaussian(random);

            double[] expected = new double[x.length];
            double[] expectedDenoised = new double[x.length];
            for (int k = 0; k < x.length; k++) {
                double x0 = config.predictionType() == PredictionType.EPSILON
                        ? x[k] - sigma * out[k]
                        : cIn * cIn * x[k] - sigma * cIn * out[k];
                double derivative = (x[k] - x0) / sigma;
                expectedDenoised[k] = x0;
                expected[k] = x[k] + (sigmas[i + 1] - sigma) * derivative;
            }

            double[] denoised = new double[x.length];
            plan.applyStep(i, x, out, denoised, null);
            assertThat(relativeError(expected, x)).as("step %d", i).isLessThan(1e-12);
            assertThat(relativeError(expectedDenoised, denoised)).as("step %d", i).isLessThan(1e-12);
        }
    }
}
