package dev.sdrt.runtime.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SampleSpaceTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();

    /** The configs the schedulers run with: flow matching has its own; the rest take SD's. */
    static SchedulerConfig configFor(String scheduler) {
        return scheduler.equals("flow-euler") ? SchedulerConfig.stableDiffusion3() : SD;
    }

    @Test
    void noisingCoefficients() {
        double sigma = 2.5;
        NoisingForm vp = SampleSpace.VARIANCE_PRESERVING.noising(sigma);
        assertThat(vp.signalCoefficient()).isCloseTo(1 / Math.sqrt(7.25), within(1e-15));
        assertThat(vp.noiseCoefficient()).isCloseTo(2.5 / Math.sqrt(7.25), within(1e-15));
        // Unit variance for unit-variance x0 and z, with σ = √((1−ᾱ)/ᾱ) the ratio noise/signal.
        assertThat(vp.signalCoefficient() * vp.signalCoefficient() + vp.noiseCoefficient() * vp.noiseCoefficient())
                .isCloseTo(1.0, within(1e-15));
        assertThat(SampleSpace.VARIANCE_EXPLODING.noising(sigma)).isEqualTo(new NoisingForm(1, 2.5));
        assertThat(SampleSpace.RECTIFIED_FLOW.noising(0.25)).isEqualTo(new NoisingForm(0.75, 0.25));
        assertThat(new NoisingForm(0.75, 0.25).apply(2, 4)).isEqualTo(2.5);
    }

    @Test
    void eachSchedulerNamesItsSpace() {
        Map<String, SampleSpace> expected = Map.of(
                "ddim", SampleSpace.VARIANCE_PRESERVING,
                "euler", SampleSpace.VARIANCE_EXPLODING,
                "euler-a", SampleSpace.VARIANCE_EXPLODING,
                "dpm++2m", SampleSpace.VARIANCE_PRESERVING,
                "dpm++2m-karras", SampleSpace.VARIANCE_PRESERVING,
                "flow-euler", SampleSpace.RECTIFIED_FLOW);
        assertThat(expected.keySet()).containsExactlyInAnyOrderElementsOf(Schedulers.NAMES);
        expected.forEach((name, space) ->
                assertThat(Schedulers.create(name, configFor(name)).plan(10).space()).as(name).isEqualTo(space));
    }

    /**
     * The space is the one the steps assume: x0 noised with z at a step's σ, given the output a
     * perfect model would return, yields x0 as the step's denoised estimate p·x + q·out.
     */
    @Test
    void aPerfectModelsDenoisedEstimateIsTheCleanLatent() {
        Random random = new Random(29);
        for (String name : Schedulers.NAMES) {
            for (PredictionType type : PredictionType.values()) {
                SchedulePlan plan = Schedulers.create(name, configFor(name).withPredictionType(type)).plan(25);
                for (int i = 0; i < plan.size(); i++) {
                    PlanStep step = plan.step(i);
                    double[] x0 = TestVectors.gaussian(random);
                    double[] z = TestVectors.gaussian(random);
                    NoisingForm noising = plan.space().noising(step.sigma());
                    double[] out = TestVectors.perfectOutput(plan.space(), type, step.sigma(), x0, z);
                    for (int k = 0; k < x0.length; k++) {
                        double x = noising.apply(x0[k], z[k]);
                        double denoised = step.denoisedSampleCoefficient() * x + step.denoisedOutputCoefficient() * out[k];
                        assertThat(denoised).as("%s, %s, step %d", name, type, i).isCloseTo(x0[k], within(1e-9));
                    }
                }
            }
        }
    }
}
