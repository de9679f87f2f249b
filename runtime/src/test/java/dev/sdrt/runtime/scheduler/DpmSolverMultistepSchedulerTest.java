package dev.sdrt.runtime.scheduler;

import static dev.sdrt.runtime.scheduler.TestVectors.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class DpmSolverMultistepSchedulerTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();
    private static final NoiseSchedule SCHEDULE = NoiseSchedule.of(SD);

    @Test
    void linspaceTimestepsDropTheLastOfStepsPlusOne() {
        // round(linspace(0, 999, 21)) descending without the final 0.
        SchedulePlan plan = new DpmSolverMultistepScheduler(SD).plan(20);
        double[] timesteps = plan.timesteps();
        assertThat(timesteps[0]).isEqualTo(999);
        assertThat(timesteps[1]).isEqualTo(949);   // 999·19/20 = 949.05
        assertThat(timesteps[19]).isEqualTo(50);   // 999/20 = 49.95
        assertThat(plan.step(1).sigma()).isCloseTo(SCHEDULE.sigma(949), within(1e-12));
        assertThat(plan.sigmas()[20]).isEqualTo(0.0);
        assertThat(plan.initNoiseSigma()).isEqualTo(1.0);
        assertThat(plan.column(PlanStep::inputScale)).containsOnly(1.0);
    }

    @Test
    void leadingAndTrailingTimesteps() {
        SchedulePlan leading = new DpmSolverMultistepScheduler(SD.withTimestepSpacing(TimestepSpacing.LEADING)).plan(20);
        // stride ⌊1000/21⌋ = 47: 20·47 + 1, ..., 1·47 + 1.
        assertThat(leading.timesteps()[0]).isEqualTo(941);
        assertThat(leading.timesteps()[19]).isEqualTo(48);
        SchedulePlan trailing = new DpmSolverMultistepScheduler(SD.withTimestepSpacing(TimestepSpacing.TRAILING)).plan(20);
        assertThat(trailing.timesteps()[0]).isEqualTo(999);
        assertThat(trailing.timesteps()[19]).isEqualTo(49);
    }

    @Test
    void firstAndLastStepsAreFirstOrder() {
        SchedulePlan plan = new DpmSolverMultistepScheduler(SD).plan(20);
        assertThat(plan.usesPreviousDenoised()).isTrue();
        assertThat(plan.step(0).previousDenoisedCoefficient()).isEqualTo(0.0);
        assertThat(plan.step(19).previousDenoisedCoefficient()).isEqualTo(0.0);
        for (int i = 1; i < 19; i++) {
            assertThat(plan.step(i).previousDenoisedCoefficient()).isNotEqualTo(0.0);
        }
        // The last step lands on σ = 0, i.e. on the denoised estimate itself.
        PlanStep last = plan.step(19);
        assertThat(last.sampleCoefficient()).isCloseTo(last.denoisedSampleCoefficient(), within(1e-15));
        assertThat(last.outputCoefficient()).isCloseTo(last.denoisedOutputCoefficient(), within(1e-15));
    }

    @Test
    void karrasSigmasSpanTheTrainingRange() {
        SchedulePlan plan = new DpmSolverMultistepScheduler(SD.withKarrasSigmas(true)).plan(20);
        double[] sigmas = plan.sigmas();
        assertThat(sigmas[0]).isCloseTo(SCHEDULE.sigma(999), within(1e-12));
        assertThat(sigmas[19]).isCloseTo(SCHEDULE.sigma(0), within(1e-12));
        for (int i = 1; i <= 20; i++) {
            assertThat(sigmas[i]).isLessThan(sigmas[i - 1]);
        }
        double[] timesteps = plan.timesteps();
        assertThat(timesteps[0]).isEqualTo(999);
        assertThat(timesteps[19]).isEqualTo(0);
        for (int i = 1; i < 20; i++) {
            assertThat(timesteps[i]).isEqualTo(Math.rint(timesteps[i])).isLessThanOrEqualTo(timesteps[i - 1]);
        }
    }

    @Test
    void trajectoryMatchesDpmSolverPlusPlus2mInSigmaSpace() {
        for (PredictionType type : PredictionType.values()) {
            checkTrajectory(SD.withPredictionType(type), 20);
            checkTrajectory(SD.withPredictionType(type), 6);
            checkTrajectory(SD.withPredictionType(type).withKarrasSigmas(true), 25);
        }
    }

    /**
     * Runs a whole trajectory through the plan and through DPM-Solver++(2M) written independently in
     * the variance-exploding variable y = x·√(σ²+1) with t = −log σ (Lu et al. 2022, algorithm 2, as
     * k-diffusion states it):
     * <pre>
     *   h = t_next − t;  y ← (σ_next/σ)·y − expm1(−h)·D
     *   D = x0 on the first step, else (1 + 1/(2r))·x0 − 1/(2r)·x0_prev with r = h_prev/h;
     *   y ← x0 when σ_next = 0.
     * </pre>
     * The model sees the variance-preserving x in both.
     */
    private static void checkTrajectory(SchedulerConfig config, int steps) {
        SchedulePlan plan = new DpmSolverMultistepScheduler(config).plan(steps);
        double[] sigmas = plan.sigmas();
        double[] x = TestVectors.gaussian(new Random(17));
        double[] y = TestVectors.scaled(Math.sqrt(sigmas[0] * sigmas[0] + 1), x);
        double[] previousDenoised = new double[x.length];
        double[] textbookPrevious = null;

        for (int i = 0; i < steps; i++) {
            double sigma = sigmas[i];
            double next = sigmas[i + 1];
            double scale = Math.sqrt(sigma * sigma + 1);

            double[] textbookInput = TestVectors.scaled(1 / scale, y);
            double[] textbookOut = TestVectors.fakeModel(textbookInput, i);
            double[] x0 = new double[y.length];
            for (int k = 0; k < y.length; k++) {
                x0[k] = config.predictionType() == PredictionType.EPSILON
                        ? y[k] - sigma * textbookOut[k]
                        : y[k] / (scale * scale) - sigma / scale * textbookOut[k];
            }
            if (next == 0) {
                y = x0.clone();
            } else {
                double h = -Math.log(next) + Math.log(sigma);
                double[] d = x0.clone();
                if (textbookPrevious != null) {
                    double r = (-Math.log(sigma) + Math.log(sigmas[i - 1])) / h;
                    for (int k = 0; k < d.length; k++) {
                        d[k] = (1 + 1 / (2 * r)) * x0[k] - 1 / (2 * r) * textbookPrevious[k];
                    }
                }
                for (int k = 0; k < y.length; k++) {
                    y[k] = next / sigma * y[k] - Math.expm1(-h) * d[k];
                }
            }
            textbookPrevious = x0;

            plan.applyStep(i, x, TestVectors.fakeModel(x, i), previousDenoised, null);
            double[] textbookX = TestVectors.scaled(1 / Math.sqrt(next * next + 1), y);
            assertThat(relativeError(textbookX, x)).as("%s, %d steps, step %d", config, steps, i).isLessThan(1e-12);
            assertThat(relativeError(x0, previousDenoised)).as("denoised at step %d", i).isLessThan(1e-12);
        }
    }
}
