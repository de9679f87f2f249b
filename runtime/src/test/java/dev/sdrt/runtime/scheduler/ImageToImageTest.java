package dev.sdrt.runtime.scheduler;

import static dev.sdrt.runtime.scheduler.SampleSpaceTest.configFor;
import static dev.sdrt.runtime.scheduler.TestVectors.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ImageToImageTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();
    private static final NoiseSchedule SCHEDULE = NoiseSchedule.of(SD);

    /** diffusers: t_start = steps − min(int(steps·strength), steps), with Python's truncation. */
    @Test
    void img2imgStartFollowsDiffusers() {
        assertThat(SchedulePlan.img2imgStart(50, 0.75)).isEqualTo(13);   // int(37.5) = 37
        assertThat(SchedulePlan.img2imgStart(30, 1.0)).isEqualTo(0);
        assertThat(SchedulePlan.img2imgStart(28, 0.6)).isEqualTo(12);    // int(16.8) = 16
        assertThat(SchedulePlan.img2imgStart(10, 0.3)).isEqualTo(7);     // 10·0.3 = 3.0000000000000004
        assertThat(SchedulePlan.img2imgStart(100, 0.29)).isEqualTo(72);  // 100·0.29 = 28.999999999999996
        assertThat(SchedulePlan.img2imgStart(4, 0.25)).isEqualTo(3);
    }

    @Test
    void img2imgStartRejectsStrengthsThatRunNothing() {
        assertThatThrownBy(() -> SchedulePlan.img2imgStart(10, 0.05)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("strength 0.05 with 10 steps runs no denoising step; raise --strength or --steps");
        for (double strength : new double[] {0, -0.5, 1.5, Double.NaN}) {
            assertThatThrownBy(() -> SchedulePlan.img2imgStart(10, strength))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("strength must be in (0, 1]");
        }
        assertThatThrownBy(() -> SchedulePlan.img2imgStart(0, 1.0)).hasMessageContaining("steps must be positive");
    }

    @Test
    void startingAtZeroIsThePlan() {
        for (String name : Schedulers.NAMES) {
            SchedulePlan plan = Schedulers.create(name, configFor(name)).plan(20);
            SchedulePlan same = plan.startingAt(0);
            assertThat(same.steps()).as(name).isEqualTo(plan.steps());
            assertThat(same.space()).isEqualTo(plan.space());
            assertThat(same.initNoiseSigma()).isEqualTo(plan.initNoiseSigma());
        }
    }

    @Test
    void singleStepSchedulersKeepTheLastStepsUnchanged() {
        for (String name : new String[] {"ddim", "euler", "euler-a", "flow-euler"}) {
            SchedulePlan plan = Schedulers.create(name, configFor(name)).plan(20);
            for (int first : new int[] {1, 7, 19}) {
                SchedulePlan part = plan.startingAt(first);
                assertThat(part.steps()).as("%s from %d", name, first).isEqualTo(plan.steps().subList(first, 20));
                assertThat(part.space()).isEqualTo(plan.space());
                assertThat(part.sigmas()).containsExactly(Arrays.copyOfRange(plan.sigmas(), first, 21));
            }
        }
    }

    @Test
    void startingAtRejectsStepsOutsideThePlan() {
        SchedulePlan plan = new EulerScheduler(SD).plan(10);
        assertThatThrownBy(() -> plan.startingAt(10)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("0..9");
        assertThatThrownBy(() -> plan.startingAt(-1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void dpmSolverRestartsFirstOrder() {
        for (PredictionType type : PredictionType.values()) {
            checkFirstOrderRestart(SD.withPredictionType(type), 20);
            checkFirstOrderRestart(SD.withPredictionType(type).withKarrasSigmas(true), 12);
        }
    }

    /**
     * From step {@code first} on, the plan's first step is DPM-Solver++'s first-order update written
     * out on the variance-preserving sample, with α = 1/√(σ²+1), σ_vp = σ·α, λ = log(α/σ_vp):
     * <pre>  x_t = (σ_t/σ_s)·x − α_t·(e^(−h) − 1)·x0_s,   h = λ_t − λ_s</pre>
     * and never reads the previous estimate; the steps after it are the full plan's.
     */
    private static void checkFirstOrderRestart(SchedulerConfig config, int steps) {
        SchedulePlan plan = new DpmSolverMultistepScheduler(config).plan(steps);
        Random random = new Random(31);
        for (int first = 1; first < steps; first++) {
            SchedulePlan part = plan.startingAt(first);
            PlanStep step = part.step(0);
            PlanStep original = plan.step(first);
            assertThat(step.previousDenoisedCoefficient()).isEqualTo(0.0);
            assertThat(part.steps().subList(1, part.size())).isEqualTo(plan.steps().subList(first + 1, steps));
            assertThat(new double[] {step.timestep(), step.sigma(), step.sigmaNext(), step.inputScale(),
                step.denoisedSampleCoefficient(), step.denoisedOutputCoefficient()})
                    .containsExactly(original.timestep(), original.sigma(), original.sigmaNext(), original.inputScale(),
                            original.denoisedSampleCoefficient(), original.denoisedOutputCoefficient());

            double alphaS = 1 / Math.sqrt(step.sigma() * step.sigma() + 1);
            double sigmaS = step.sigma() * alphaS;
            double alphaT = 1 / Math.sqrt(step.sigmaNext() * step.sigmaNext() + 1);
            double sigmaT = step.sigmaNext() * alphaT;
            double[] x = TestVectors.gaussian(random);
            double[] out = TestVectors.fakeModel(x, first);
            double[] expected = new double[x.length];
            for (int k = 0; k < x.length; k++) {
                double x0 = config.predictionType() == PredictionType.EPSILON
                        ? (x[k] - sigmaS * out[k]) / alphaS
                        : alphaS * x[k] - sigmaS * out[k];
                if (sigmaT == 0) {
                    expected[k] = x0;
                } else {
                    double h = Math.log(alphaT / sigmaT) - Math.log(alphaS / sigmaS);
                    expected[k] = sigmaT / sigmaS * x[k] - alphaT * (Math.exp(-h) - 1) * x0;
                }
            }
            // NaN in the previous-estimate buffer shows that the first step does not read it.
            double[] previous = new double[x.length];
            Arrays.fill(previous, Double.NaN);
            part.applyStep(0, x, out, previous, null);
            assertThat(relativeError(expected, x)).as("%s from step %d", config, first).isLessThan(1e-12);
        }
    }

    @Test
    void noiseSampleIsDiffusersAddNoise() {
        Random random = new Random(37);
        double[] x0 = TestVectors.gaussian(random);
        double[] z = TestVectors.gaussian(random);
        int first = SchedulePlan.img2imgStart(50, 0.75);

        // DDIM: √ᾱ_t·x0 + √(1 − ᾱ_t)·z at the first remaining timestep.
        SchedulePlan ddim = new DdimScheduler(SD).plan(50).startingAt(first);
        double alphaCumprod = SCHEDULE.alphaCumprod((int) ddim.timesteps()[0]);
        assertThat(ddim.timesteps()[0]).isEqualTo(721);
        checkNoised(ddim, x0, z, Math.sqrt(alphaCumprod), Math.sqrt(1 - alphaCumprod));

        // DPM-Solver++: α_t·x0 + σ_t·z from the step's σ.
        SchedulePlan dpm = new DpmSolverMultistepScheduler(SD.withKarrasSigmas(true)).plan(50).startingAt(first);
        double sigma = dpm.step(0).sigma();
        checkNoised(dpm, x0, z, 1 / Math.sqrt(sigma * sigma + 1), sigma / Math.sqrt(sigma * sigma + 1));

        // Euler and ancestral Euler: x0 + σ·z, whatever the initial noise scale of text to image.
        for (Scheduler euler : new Scheduler[] {new EulerScheduler(SD.withTimestepSpacing(TimestepSpacing.LEADING)),
            new EulerAncestralScheduler(SD)}) {
            SchedulePlan plan = euler.plan(50).startingAt(first);
            checkNoised(plan, x0, z, 1, plan.step(0).sigma());
        }

        // Flow matching (scale_noise): (1 − σ)·x0 + σ·z.
        SchedulePlan flow = new FlowMatchEulerScheduler(SchedulerConfig.stableDiffusion3()).plan(28).startingAt(9);
        checkNoised(flow, x0, z, 1 - flow.step(0).sigma(), flow.step(0).sigma());
    }

    private static void checkNoised(SchedulePlan plan, double[] x0, double[] z, double signal, double noise) {
        double[] x = x0.clone();
        plan.noiseSample(x, z);
        float[] xf = new float[x0.length];
        float[] zf = new float[x0.length];
        for (int k = 0; k < x0.length; k++) {
            xf[k] = (float) x0[k];
            zf[k] = (float) z[k];
        }
        plan.noiseSample(xf, zf);
        for (int k = 0; k < x0.length; k++) {
            double expected = signal * x0[k] + noise * z[k];
            assertThat(x[k]).isCloseTo(expected, within(1e-12));
            assertThat((double) xf[k]).isCloseTo(expected, within(1e-5 * (1 + Math.abs(expected))));
        }
        assertThatThrownBy(() -> plan.noiseSample(new float[4], new float[3])).hasMessageContaining("noise");
    }

    /**
     * End to end: x0 noised at the first remaining step, then every step with a perfect model (its
     * output made from the true noise in the current sample), ends at x0. The deterministic samplers
     * stay on x0's noising path throughout, i.e. the true noise never changes.
     */
    @Test
    void aPerfectModelRecoversTheImage() {
        SchedulerConfig ddimToOne = new SchedulerConfig(1000, 0.00085, 0.012, BetaSchedule.SCALED_LINEAR,
                PredictionType.EPSILON, null, 1, false, 1.0, true);
        for (PredictionType type : PredictionType.values()) {
            for (String name : Schedulers.NAMES) {
                recoverImage(Schedulers.create(name, configFor(name).withPredictionType(type)), 30, 0.6);
                recoverImage(Schedulers.create(name, configFor(name).withPredictionType(type)), 25, 1.0);
            }
            recoverImage(new DdimScheduler(ddimToOne.withPredictionType(type)), 50, 0.75);
        }
    }

    private static void recoverImage(Scheduler scheduler, int steps, double strength) {
        SchedulePlan plan = scheduler.plan(steps).startingAt(SchedulePlan.img2imgStart(steps, strength));
        String what = scheduler.getClass().getSimpleName() + " " + scheduler.config() + " " + steps + "·" + strength;
        Random random = new Random(41);
        double[] x0 = TestVectors.gaussian(random);
        double[] z = TestVectors.gaussian(random);
        double[] x = x0.clone();
        plan.noiseSample(x, z);
        double[] previous = new double[x.length];
        for (int i = 0; i < plan.size(); i++) {
            PlanStep step = plan.step(i);
            NoisingForm noising = plan.space().noising(step.sigma());
            double[] trueNoise = new double[x.length];
            for (int k = 0; k < x.length; k++) {
                trueNoise[k] = (x[k] - noising.signalCoefficient() * x0[k]) / noising.noiseCoefficient();
            }
            double[] out = TestVectors.perfectOutput(plan.space(), scheduler.config().predictionType(), step.sigma(),
                    x0, trueNoise);
            plan.applyStep(i, x, out, previous, step.noiseCoefficient() != 0 ? TestVectors.gaussian(random) : null);
            assertThat(relativeError(x0, previous)).as("%s: denoised at step %d", what, i).isLessThan(1e-9);
            if (!plan.usesNoise()) {
                NoisingForm next = plan.space().noising(step.sigmaNext());
                double[] onPath = new double[x.length];
                for (int k = 0; k < x.length; k++) {
                    onPath[k] = next.apply(x0[k], z[k]);
                }
                assertThat(relativeError(onPath, x)).as("%s: step %d", what, i).isLessThan(1e-9);
            }
        }
        // SD's DDIM stops at ᾱ_0 (set_alpha_to_one = false), where the path above checked it; the
        // others land on σ = 0.
        if (plan.sigmas()[plan.size()] == 0) {
            assertThat(relativeError(x0, x)).as(what).isLessThan(1e-6);
        }
    }
}
