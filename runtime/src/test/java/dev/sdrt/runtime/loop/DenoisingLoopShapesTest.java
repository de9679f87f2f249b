package dev.sdrt.runtime.loop;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * DenoisingLoop's per-shape workspaces on a recording fake device that stands in for the GPU: with
 * models that, like TensorRT engines, name no dynamic dimensions, the DeepCache feature is sized by
 * the full graph's own shape inference; and past the workspace bound only the least recently used
 * shape loses its buffers and captured replay.
 */
class DenoisingLoopShapesTest {

    private static final long DYN = TensorSpec.DYNAMIC;

    /** A model with unnamed dynamic dimensions; {@code inferFeature} says whether it can infer output shapes. */
    private record FakeModel(String name, Map<String, TensorSpec> inputs, Map<String, TensorSpec> outputs, boolean inferFeature)
            implements LoopModel {
        @Override
        public Optional<Map<String, long[]>> outputShapes(Map<String, long[]> inputShapes) {
            if (!inferFeature) {
                return Optional.empty();
            }
            long[] sample = inputShapes.get("sample");
            return Optional.of(Map.of("deepcache_feature", new long[] {sample[0], 8, sample[2], sample[3]},
                    "out_sample", sample.clone()));
        }

        @Override
        public void close() {
        }
    }

    /** Allocates, records launches, counts captures and closed replays, and returns zeros. */
    private static final class FakeDevice implements LoopDevice {
        final Map<String, long[]> allocated = new LinkedHashMap<>();
        final java.util.Set<Object> freed = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        int allocations;
        final List<String> launches = new ArrayList<>();
        long syncs;
        int captures;
        int closedReplays;

        @Override
        public LoopModel load(Path model) {
            throw new UnsupportedOperationException();
        }

        @Override
        public DeviceTensor allocate(String label, DType dtype, long... shape) {
            allocated.put(label, shape.clone());
            allocations++;
            return new DeviceTensor(new Object(), label, dtype, shape, 0);
        }

        @Override
        public void free(DeviceTensor tensor) {
            assertThat(freed.add(tensor.allocation())).as("freed twice: %s", tensor).isTrue();
        }

        @Override
        public void upload(List<DeviceTensor> targets, List<Tensor> sources) {
        }

        @Override
        public void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
            launches.add(model.name());
        }

        @Override
        public Replay capture(Runnable work) {
            captures++;
            work.run();
            return new Replay() {
                @Override
                public void launch() {
                }

                @Override
                public void close() {
                    closedReplays++;
                }
            };
        }

        @Override
        public List<Tensor> download(DeviceTensor... sources) {
            syncs++;
            List<Tensor> out = new ArrayList<>();
            for (DeviceTensor s : sources) {
                out.add(Tensor.allocate(s.dtype(), s.shape()));
            }
            return out;
        }

        @Override
        public long synchronizations() {
            return syncs;
        }

        @Override
        public void close() {
        }
    }

    private static TensorSpec spec(String name, long... shape) {
        return new TensorSpec(name, DType.FLOAT32, shape, List.of());
    }

    private static Map<String, TensorSpec> specs(TensorSpec... specs) {
        Map<String, TensorSpec> m = new LinkedHashMap<>();
        for (TensorSpec s : specs) {
            m.put(s.name(), s);
        }
        return m;
    }

    private static DenoisingLoop.Models models(boolean inferFeature) {
        Map<String, TensorSpec> unetIn = specs(spec("sample", DYN, 4, DYN, DYN), spec("timestep", DYN),
                spec("encoder_hidden_states", DYN, 77, 32));
        FakeModel unet = new FakeModel("unet", unetIn, specs(spec("out_sample", DYN, 4, DYN, DYN)), false);
        FakeModel full = new FakeModel("full", unetIn, specs(spec("out_sample", DYN, 4, DYN, DYN),
                spec("deepcache_feature", DYN, 8, DYN, DYN)), inferFeature);
        Map<String, TensorSpec> shallowIn = new LinkedHashMap<>(unetIn);
        shallowIn.put("deepcache_feature", spec("deepcache_feature", DYN, 8, DYN, DYN));
        FakeModel shallow = new FakeModel("shallow", shallowIn, specs(spec("out_sample", DYN, 4, DYN, DYN)), false);
        FakeModel step = new FakeModel("step", Map.of(), Map.of(), false);
        FakeModel vae = new FakeModel("vae", Map.of(), Map.of(), false);
        return new DenoisingLoop.Models(unet, "sample", "out_sample", step, vae, full, shallow);
    }

    private static DenoisingLoop.Request request() {
        return request(12);
    }

    /** One image whose latents are 8 high and {@code latentWidth} wide: a shape of its own for each width. */
    private static DenoisingLoop.Request request(int latentWidth) {
        SchedulePlan plan = Schedulers.create("euler", SchedulerConfig.stableDiffusion()).plan(3);
        long[] latentShape = {1, 4, 8, latentWidth};
        return new DenoisingLoop.Request(plan, 7.5, latentShape, new long[] {1, 3, 16, 2L * latentWidth},
                new float[4 * 8 * latentWidth], Map.of("encoder_hidden_states", Tensor.allocate(DType.FLOAT32, 2, 77, 32)), null,
                new boolean[] {true, false, false}, 0.18215, 0);
    }

    @Test
    void anUnnamedFeatureIsSizedByTheFullGraphsShapeInference() {
        FakeDevice device = new FakeDevice();
        try (DenoisingLoop loop = new DenoisingLoop(device, models(true), true)) {
            DenoisingLoop.Result r = loop.run(request());
            assertThat(device.allocated.get("deepcache_feature")).containsExactly(2, 8, 8, 12);
            assertThat(r.synchronizations()).isEqualTo(1);
            assertThat(device.launches).containsExactly("full", "step", "shallow", "step", "shallow", "step", "vae");
        }
    }

    @Test
    void withoutNamesOrInferenceTheFeatureCannotBeSized() {
        try (DenoisingLoop loop = new DenoisingLoop(new FakeDevice(), models(false), false)) {
            assertThatThrownBy(() -> loop.run(request())).hasMessageContaining("cannot size deepcache_feature");
        }
    }

    @Test
    void pastTheBoundOnlyTheLeastRecentlyUsedShapeLosesItsReplayAndMemory() {
        FakeDevice device = new FakeDevice();
        try (DenoisingLoop loop = new DenoisingLoop(device, models(true), true)) {
            int perShape = 0;
            for (int width : new int[] {4, 6, 8, 10}) {
                assertThat(loop.run(request(width)).replayed()).as("first request of width %d", width).isFalse();
                perShape = perShape == 0 ? device.allocations : perShape;
            }
            assertThat(loop.run(request(4)).replayed()).isTrue();
            assertThat(device.freed).isEmpty();
            // The bound of four is reached: a fifth shape evicts width 6, now the least recently used.
            loop.run(request(12));
            assertThat(device.captures).isEqualTo(5);
            assertThat(device.closedReplays).isEqualTo(1);
            assertThat(device.freed).as("the evicted shape's tensors are freed").hasSize(perShape);

            assertThat(loop.run(request(4)).replayed()).as("the hot shape keeps its capture").isTrue();
            assertThat(loop.run(request(8)).replayed()).isTrue();
            assertThat(loop.run(request(10)).replayed()).isTrue();
            assertThat(device.captures).as("only the new shape was captured").isEqualTo(5);
            assertThat(loop.run(request(6)).replayed()).as("the evicted shape is captured afresh").isFalse();
            assertThat(device.captures).isEqualTo(6);
            assertThat(device.closedReplays).as("width 12, by then the least recently used, made way for it").isEqualTo(2);
        }
        assertThat(device.closedReplays).as("closing the loop closes the four it holds").isEqualTo(6);
        assertThat(device.freed).as("every tensor the loop allocated is freed by the end").hasSize(device.allocations);
    }
}
