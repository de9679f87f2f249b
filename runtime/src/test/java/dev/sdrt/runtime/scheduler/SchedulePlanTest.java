package dev.sdrt.runtime.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.offset;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SchedulePlanTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();

    @Test
    void floatStepAgreesWithDoubleStep() {
        SchedulePlan plan = new DpmSolverMultistepScheduler(SD).plan(10);
        Random random = new Random(23);
        double[] x = TestVectors.gaussian(random);
        double[] previous = new double[x.length];
        float[] xf = toFloat(x);
        float[] previousF = new float[x.length];
        for (int i = 0; i < plan.size(); i++) {
            double[] out = TestVectors.fakeModel(x, i);
            plan.applyStep(i, x, out, previous, null);
            plan.applyStep(i, xf, toFloat(out), previousF, null);
            for (int k = 0; k < x.length; k++) {
                assertThat((double) xf[k]).isCloseTo(x[k], offset(1e-5 * (1 + Math.abs(x[k]))));
            }
        }
    }

    @Test
    void stepIsTheAffineFormOfItsCoefficients() {
        PlanStep step = new PlanStep(500, 2, 1, 0.5, 0.8, 0.25, 1.5, -0.5, 0.25, 0.125, 3, -2);
        SchedulePlan plan = new SchedulePlan(List.of(step), 1, SampleSpace.VARIANCE_PRESERVING);
        float[] x = {2f};
        float[] previous = {4f};
        plan.applyStep(0, x, new float[] {1f}, previous, new float[] {8f});
        assertThat(x[0]).isEqualTo(1.5f * 2 - 0.5f * 1 + 0.25f * 4 + 0.125f * 8);
        assertThat(previous[0]).isEqualTo(3f * 2 - 2f * 1);
    }

    @Test
    void columnsAndSigmas() {
        SchedulePlan plan = new EulerScheduler(SD).plan(8);
        assertThat(plan.timesteps()).hasSize(8);
        assertThat(plan.sigmas()).hasSize(9);
        assertThat(plan.column(PlanStep::sigmaNext)[7]).isEqualTo(0.0);
        assertThat(plan.column(PlanStep::sigma)).containsExactly(Arrays.copyOf(plan.sigmas(), 8));
        assertThatThrownBy(() -> plan.steps().add(plan.step(0))).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> new SchedulePlan(List.of(), 1, SampleSpace.VARIANCE_EXPLODING)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void missingBuffersAreRejected() {
        SchedulePlan multistep = new DpmSolverMultistepScheduler(SD).plan(10);
        assertThatThrownBy(() -> multistep.applyStep(0, new float[4], new float[4], null, null))
                .hasMessageContaining("previous-denoised");
        assertThatThrownBy(() -> multistep.applyStep(0, new float[4], new float[3], new float[4], null))
                .hasMessageContaining("model output");
        SchedulePlan ancestral = new EulerAncestralScheduler(SD).plan(10);
        assertThatThrownBy(() -> ancestral.applyStep(0, new float[4], new float[4], null, null))
                .hasMessageContaining("noise");
        // Steps that add no noise and deterministic plans need neither buffer.
        ancestral.applyStep(9, new float[4], new float[4], null, null);
        new EulerScheduler(SD).plan(10).applyStep(0, new double[4], new double[4], null, null);
    }

    private static float[] toFloat(double[] values) {
        float[] result = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            result[i] = (float) values[i];
        }
        return result;
    }
}
