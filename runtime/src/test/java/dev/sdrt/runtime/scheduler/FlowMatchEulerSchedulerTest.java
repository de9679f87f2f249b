package dev.sdrt.runtime.scheduler;

import static dev.sdrt.runtime.scheduler.TestVectors.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class FlowMatchEulerSchedulerTest {

    private static double shift3(double sigma) {
        return 3 * sigma / (1 + 2 * sigma);
    }

    @Test
    void sd3SigmasStartAtOneAndAreShifted() {
        int steps = 28;
        SchedulePlan plan = new FlowMatchEulerScheduler(SchedulerConfig.stableDiffusion3()).plan(steps);
        double[] sigmas = plan.sigmas();
        assertThat(sigmas[0]).isEqualTo(1.0);
        assertThat(plan.timesteps()[0]).isEqualTo(1000.0);
        // Unshifted σ runs linearly from 1 to shift(1/1000) = 0.003/1.002, then every value is shifted.
        double unshiftedMin = shift3(0.001);
        for (int i = 0; i < steps; i++) {
            double unshifted = 1 + i * (unshiftedMin - 1) / (steps - 1);
            assertThat(sigmas[i]).as("sigma %d", i).isCloseTo(shift3(unshifted), within(1e-12));
            assertThat(plan.timesteps()[i]).isCloseTo(1000 * sigmas[i], within(1e-9));
        }
        assertThat(sigmas[steps - 1]).isCloseTo(0.0089286, within(1e-7));
        assertThat(sigmas[steps]).isEqualTo(0.0);
        for (int i = 1; i <= steps; i++) {
            assertThat(sigmas[i]).isLessThan(sigmas[i - 1]);
        }
        assertThat(plan.initNoiseSigma()).isEqualTo(1.0);
        assertThat(plan.column(PlanStep::inputScale)).containsOnly(1.0);
    }

    @Test
    void withoutShiftSigmasAreLinear() {
        SchedulePlan plan = new FlowMatchEulerScheduler(SchedulerConfig.defaults()).plan(4);
        assertThat(plan.sigmas()).containsExactly(new double[] {1.0, 1 - 0.999 / 3, 1 - 2 * 0.999 / 3, 0.001, 0.0},
                within(1e-15));
    }

    /** x_next = x + (σ_next − σ)·v and x0 = x − σ·v, written out. */
    @Test
    void stepIsEulerOnTheVelocity() {
        SchedulePlan plan = new FlowMatchEulerScheduler(SchedulerConfig.stableDiffusion3()).plan(10);
        double[] sigmas = plan.sigmas();
        Random random = new Random(19);
        for (int i = 0; i < 10; i++) {
            double[] x = TestVectors.gaussian(random);
            double[] v = TestVectors.gaussian(random);
            double[] expected = new double[x.length];
            double[] expectedDenoised = new double[x.length];
            for (int k = 0; k < x.length; k++) {
                expected[k] = x[k] + (sigmas[i + 1] - sigmas[i]) * v[k];
                expectedDenoised[k] = x[k] - sigmas[i] * v[k];
            }
            double[] denoised = new double[x.length];
            plan.applyStep(i, x, v, denoised, null);
            assertThat(relativeError(expected, x)).isLessThan(1e-12);
            assertThat(relativeError(expectedDenoised, denoised)).isLessThan(1e-12);
        }
    }
}
