package dev.sdrt.runtime.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FeatureCacheDenoiserTest {
    private static final String F = FeatureCacheDenoiser.DEFAULT_FEATURE;

    /** Records calls; full returns feature = 10·t and out = t, shallow returns out = 100·t + feature. */
    private final List<String> calls = new ArrayList<>();

    private final FeatureCacheDenoiser.UnetGraph full = inputs -> {
        float t = value(inputs.get("timestep"));
        calls.add("full " + (int) t + " " + inputs.keySet());
        return Map.of("out_sample", scalar(t), F, scalar(10 * t));
    };

    private final FeatureCacheDenoiser.UnetGraph shallow = inputs -> {
        float t = value(inputs.get("timestep"));
        calls.add("shallow " + (int) t + " " + inputs.keySet().stream().sorted().toList());
        return Map.of("out_sample", scalar(100 * t + value(inputs.get(F))));
    };

    @Test
    void followsTheScheduleAndFeedsTheLatestFeature() {
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(full, shallow, FeatureCacheSchedule.uniform(7, 3));
        List<Float> outs = new ArrayList<>();
        for (int step = 0; step < 7; step++) {
            Map<String, Tensor> out = d.step(step, Map.of("timestep", scalar(step)));
            assertThat(out).containsOnlyKeys("out_sample");
            outs.add(value(out.get("out_sample")));
        }
        // full steps 0, 3, 6 return t; shallow steps return 100·t + the feature of the last full step (10·t_full)
        assertThat(outs).containsExactly(0f, 100f, 200f, 3f, 430f, 530f, 6f);
        assertThat(calls).containsExactly("full 0 [timestep]", "shallow 1 [deepcache_feature, timestep]",
                "shallow 2 [deepcache_feature, timestep]", "full 3 [timestep]",
                "shallow 4 [deepcache_feature, timestep]", "shallow 5 [deepcache_feature, timestep]", "full 6 [timestep]");
        assertThat(d.fullRuns()).isEqualTo(3);
        assertThat(d.shallowRuns()).isEqualTo(4);
        assertThat(d.cachedStep()).isEqualTo(6);
    }

    @Test
    void theCachedFeatureIsTheFullRunsTensorItself() {
        Tensor feature = scalar(42);
        Tensor[] fed = new Tensor[1];
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(in -> Map.of("out_sample", scalar(0), F, feature),
                in -> {
                    fed[0] = in.get(F);
                    return Map.of("out_sample", scalar(1));
                }, FeatureCacheSchedule.uniform(2, 2));
        d.step(0, Map.of());
        d.step(1, Map.of());
        assertThat(fed[0]).isSameAs(feature);
    }

    @Test
    void shallowStepBeforeAnyFullStepFails() {
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(full, shallow, FeatureCacheSchedule.uniform(6, 3));
        assertThatThrownBy(() -> d.step(1, Map.of("timestep", scalar(1))))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("step 1 is a shallow step, but no full step has run")
                .hasMessageContaining("F s s F s s");
        assertThat(calls).isEmpty();
    }

    @Test
    void resetDropsTheFeatureAndANewLoopWithoutResetIsCaught() {
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(full, shallow, FeatureCacheSchedule.nonUniform(6, 3, 1.0, 1.4));
        assertThat(d.schedule().toString()).isEqualTo("F s s s F s");
        for (int step = 0; step < 6; step++) {
            d.step(step, Map.of("timestep", scalar(step)));
        }
        assertThatThrownBy(() -> d.step(1, Map.of("timestep", scalar(1))))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("must call reset()");
        d.reset();
        assertThat(d.cachedStep()).isEqualTo(-1);
        assertThatThrownBy(() -> d.step(1, Map.of("timestep", scalar(1)))).hasMessageContaining("no full step has run");
        d.step(0, Map.of("timestep", scalar(0)));
        assertThat(value(d.step(1, Map.of("timestep", scalar(1))).get("out_sample"))).isEqualTo(100f);
    }

    @Test
    void fullGraphWithoutTheFeatureOutputFails() {
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(in -> Map.of("out_sample", scalar(0)), shallow,
                FeatureCacheSchedule.uniform(3, 3));
        assertThatThrownBy(() -> d.step(0, Map.of()))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("returned no 'deepcache_feature'")
                .hasMessageContaining("[out_sample]");
    }

    @Test
    void intervalOneNeverRunsShallow() {
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(full, shallow, FeatureCacheSchedule.uniform(4, 1));
        for (int step = 0; step < 4; step++) {
            d.step(step, Map.of("timestep", scalar(step)));
        }
        assertThat(d.fullRuns()).isEqualTo(4);
        assertThat(d.shallowRuns()).isZero();
    }

    @Test
    void rejectsTheFeatureAmongTheInputsAndStepsOutsideTheSchedule() {
        FeatureCacheDenoiser d = new FeatureCacheDenoiser(full, shallow, FeatureCacheSchedule.uniform(3, 3));
        assertThatThrownBy(() -> d.step(0, Map.of("timestep", scalar(0), F, scalar(1))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("already hold 'deepcache_feature'");
        assertThatThrownBy(() -> d.step(3, Map.of("timestep", scalar(3))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("outside this 3-step schedule");
    }

    private static Tensor scalar(float v) {
        return Tensor.ofFloats(new long[] {1}, new float[] {v});
    }

    private static float value(Tensor t) {
        return t.toFloatArray()[0];
    }
}
