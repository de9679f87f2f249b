package dev.sdrt.runtime.loop;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtTensorInfo;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What of the TensorRT loop device runs without a GPU: finding the engine beside the ONNX file (before
 * any CUDA call), the refusal without TensorRT, the staging layout and view address arithmetic, which
 * tensors bind through aligned slots and so how many execution contexts the loop's launches need,
 * and the engine-to-loop tensor specs. The device itself is exercised by the cli module's GPU suite.
 */
class TrtLoopDeviceTest {
    @TempDir
    Path tmp;

    /** Freeing memory retires the contexts whose launches bind a tensor starting inside it, and only those. */
    @Test
    void bindingsTouchTheMemoryTheirTensorsStartIn() {
        TrtLoopDevice.Bindings bindings = new TrtLoopDevice.Bindings("sample=1000;out=2000;", new long[] {0x1000, 0x2000});
        assertThat(bindings.touches(0x1000, 0x1100)).isTrue();
        assertThat(bindings.touches(0x1f00, 0x2001)).isTrue();
        assertThat(bindings.touches(0x1001, 0x2000)).as("the end is exclusive").isFalse();
        assertThat(bindings.touches(0x3000, 0x4000)).isFalse();
    }

    @Test
    void aMissingEngineIsNamedWithTheCommandThatBuildsIt() throws Exception {
        Path onnx = Files.writeString(tmp.resolve("unet.onnx"), "not really onnx");
        assertThatThrownBy(() -> TrtLoopDevice.planFor(onnx)).isInstanceOf(NoSuchFileException.class)
                .hasMessageContaining(tmp.resolve("unet.plan").toString())
                .hasMessageContaining("no TensorRT engine for unet.onnx")
                .hasMessageContaining("sdrt build-pipeline --model " + tmp.toAbsolutePath());
        // The device checks the file before it touches CUDA, so this holds on any machine.
        try (TrtLoopDevice device = new TrtLoopDevice()) {
            assertThatThrownBy(() -> device.load(onnx)).isInstanceOf(NoSuchFileException.class)
                    .hasMessageContaining("unet.plan").hasMessageContaining("sdrt build-pipeline");
            assertThat(device.synchronizations()).isZero();
            assertThat(device.toString()).isEqualTo("TensorRT");
        }
    }

    @Test
    void theEngineSitsBesideTheOnnxFile() throws Exception {
        Path onnx = tmp.resolve("vae_decoder.onnx");
        Path plan = Files.writeString(tmp.resolve("vae_decoder.plan"), "x");
        assertThat(TrtLoopDevice.planFor(onnx)).isEqualTo(plan);
        assertThat(TrtLoopDevice.planFor(plan)).as("a .plan is taken as is").isEqualTo(plan);
    }

    @Test
    void aLocatorFindsEnginesElsewhere() throws Exception {
        Path onnx = Files.writeString(tmp.resolve("unet.onnx"), "x");
        Path store = Files.createDirectories(tmp.resolve("engines"));
        Path plan = Files.writeString(store.resolve("unet-64x64-b2.plan"), "x");
        java.util.List<Path> asked = new java.util.ArrayList<>();
        try (TrtLoopDevice device = new TrtLoopDevice(model -> {
            asked.add(model);
            if (!model.equals(onnx)) {
                throw new NoSuchFileException(model.toString(), null, "not in the store");
            }
            return plan;
        })) {
            assertThatThrownBy(() -> device.load(tmp.resolve("vae.onnx"))).isInstanceOf(NoSuchFileException.class)
                    .hasMessageContaining("not in the store");
            if (!TensorRt.isAvailable()) {
                // found through the locator (nothing beside the ONNX file), then refused for want of TensorRT
                assertThatThrownBy(() -> device.load(onnx)).isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("TensorRT is not usable on this machine");
            }
        }
        assertThat(asked).startsWith(tmp.resolve("vae.onnx"));
        if (!TensorRt.isAvailable()) {
            assertThat(asked).containsExactly(tmp.resolve("vae.onnx"), onnx);
        }
    }

    @Test
    void withoutTensorRtLoadingAndAllocatingSayWhy() throws Exception {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT; the GPU suite covers the device");
        Files.writeString(tmp.resolve("unet.onnx"), "x");
        Files.writeString(tmp.resolve("unet.plan"), "x");
        try (TrtLoopDevice device = new TrtLoopDevice()) {
            assertThatThrownBy(() -> device.load(tmp.resolve("unet.onnx"))).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("TensorRT is not usable on this machine");
            assertThatThrownBy(() -> device.allocate("x", DType.FLOAT32, 4)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("TensorRT is not usable on this machine");
        }
    }

    @Test
    void viewsBindTheirAllocationPlusTheirOffset() {
        DeviceTensor table = new DeviceTensor(new Object(), "timesteps", DType.FLOAT32, new long[] {50, 2}, 0);
        assertThat(TrtLoopDevice.byteOffset(table)).isZero();
        assertThat(TrtLoopDevice.byteOffset(table.row(7, 2))).isEqualTo(7 * 2 * 4);
        DeviceTensor noise = new DeviceTensor(new Object(), "noise", DType.FLOAT32, new long[] {3, 1, 4, 8, 8}, 0);
        assertThat(TrtLoopDevice.byteOffset(noise.row(2))).isEqualTo(2L * 4 * 8 * 8 * 4);
        assertThat(TrtLoopDevice.byteOffset(noise.row(2).head(1))).isEqualTo(2L * 4 * 8 * 8 * 4);
        DeviceTensor half = new DeviceTensor(new Object(), "h", DType.FLOAT16, new long[] {4, 3}, 0);
        assertThat(TrtLoopDevice.byteOffset(half.row(3))).isEqualTo(3 * 3 * 2);
    }

    @Test
    void tableRowsTensorRtCannotTakeAreFound() {
        // TensorRT wants 256-byte aligned tensor addresses; cudaMalloc gives them, table rows mostly do not.
        long base = 0x7f0000000000L;
        DeviceTensor coefficients = new DeviceTensor(new Object(), "coefficients", DType.FLOAT32, new long[] {100, 9}, 0);
        assertThat(TrtLoopDevice.aligned(base + TrtLoopDevice.byteOffset(coefficients.row(0)))).isTrue();
        assertThat(TrtLoopDevice.aligned(base + TrtLoopDevice.byteOffset(coefficients.row(1)))).isFalse();
        assertThat(TrtLoopDevice.aligned(base + TrtLoopDevice.byteOffset(coefficients.row(64)))).as("64 * 36 = 9 * 256").isTrue();
        DeviceTensor noise = new DeviceTensor(new Object(), "noise", DType.FLOAT32, new long[] {50, 1, 4, 64, 64}, 0);
        assertThat(TrtLoopDevice.aligned(base + TrtLoopDevice.byteOffset(noise.row(17)))).as("512x512 latents").isTrue();
    }

    @Test
    void rowsOfTablesBindThroughTheSlotAlignedOrNotWholeTensorsWhereTheyAre() {
        TrtLoopDevice.Placement table = new TrtLoopDevice.Placement(0x7f0000000000L, 50L * 4 * 64 * 64 * 4);
        DeviceTensor noise = new DeviceTensor(table, "noise", DType.FLOAT32, new long[] {50, 1, 4, 64, 64}, 0);
        assertThat(TrtLoopDevice.aligned(table.address() + TrtLoopDevice.byteOffset(noise.row(17)))).isTrue();
        assertThat(TrtLoopDevice.throughSlot(noise.row(17), true, table)).as("an aligned row moves every step").isTrue();
        assertThat(TrtLoopDevice.throughSlot(noise.row(0), true, table)).as("row 0 too").isTrue();
        assertThat(TrtLoopDevice.throughSlot(noise, true, table)).as("the whole table").isFalse();
        assertThat(TrtLoopDevice.throughSlot(noise.row(17), false, table)).as("an aligned output view (warm-up scratch)").isFalse();
        TrtLoopDevice.Placement coefficients = new TrtLoopDevice.Placement(0x7f0000100000L, 50L * 9 * 4);
        DeviceTensor row = new DeviceTensor(coefficients, "coefficients", DType.FLOAT32, new long[] {50, 9}, 0).row(1);
        assertThat(TrtLoopDevice.throughSlot(row, false, coefficients)).as("unaligned, even as an output").isTrue();
    }

    /**
     * The loop's launches over 50 steps of an ancestral sampler at 512×512 (noise rows 64 KiB apart,
     * each 256-byte aligned) need one execution context per ping-pong buffer set, not one per step:
     * the timestep, coefficient and noise rows all bind through slots.
     */
    @Test
    void everyStepBindsTheSameAddressesSoTwoContextsServeTheWholeLoop() {
        long dyn = TensorSpec.DYNAMIC;
        LoopModel unet = new Model("unet", Map.of("sample", spec("sample", dyn, 4, dyn, dyn), "timestep", spec("timestep", dyn),
                "encoder_hidden_states", spec("encoder_hidden_states", dyn, 77, 768)), Map.of("out_sample",
                spec("out_sample", dyn, 4, dyn, dyn)));
        LoopModel step = new Model("step", Map.of(), Map.of());
        LoopModel vae = new Model("vae", Map.of(), Map.of());
        PlacingDevice device = new PlacingDevice();
        long[] latents = {1, 4, 64, 64};
        int steps = 50;
        int n = Math.toIntExact(Tensor.numElements(latents));
        try (DenoisingLoop loop = new DenoisingLoop(device, new DenoisingLoop.Models(unet, "sample", "out_sample", step, vae,
                null, null), true)) {
            loop.run(new DenoisingLoop.Request(Schedulers.create("euler-a", SchedulerConfig.stableDiffusion()).plan(steps),
                    7.5, latents, new long[] {1, 3, 512, 512}, new float[n], Map.of("encoder_hidden_states",
                    Tensor.allocate(DType.FLOAT32, 2, 77, 768)), new float[steps * n], null, 0.18215, 0));
        }
        Map<String, Set<String>> contexts = new LinkedHashMap<>();
        Set<Long> noiseRows = new LinkedHashSet<>();
        for (PlacingDevice.Launch launch : device.launches) {
            contexts.computeIfAbsent(launch.model(), k -> new LinkedHashSet<>())
                    .add(TrtLoopDevice.bindings(launch.inputs(), launch.outputs(), a -> (TrtLoopDevice.Placement) a).key());
            DeviceTensor noise = launch.inputs().get("noise");
            if (noise != null) {
                noiseRows.add(((TrtLoopDevice.Placement) noise.allocation()).address() + TrtLoopDevice.byteOffset(noise));
            }
        }
        assertThat(noiseRows).as("a row at another aligned address every step").hasSize(steps).allMatch(TrtLoopDevice::aligned);
        assertThat(contexts.get("unet")).as("denoiser contexts").hasSize(2);
        assertThat(contexts.get("step")).as("step-graph contexts").hasSize(2);
        assertThat(contexts.get("vae")).hasSize(1);
        assertThat(contexts.get("step")).allMatch(key -> key.contains("noise=slot;") && key.contains("coefficients=slot;"));
    }

    private static TensorSpec spec(String name, long... shape) {
        return new TensorSpec(name, DType.FLOAT32, shape, List.of());
    }

    private record Model(String name, Map<String, TensorSpec> inputs, Map<String, TensorSpec> outputs) implements LoopModel {
        @Override
        public void close() {
        }
    }

    /** Hands out placements as cudaMalloc would (aligned, one after another), records launches, runs nothing. */
    private static final class PlacingDevice implements LoopDevice {
        record Launch(String model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
        }

        final List<Launch> launches = new ArrayList<>();
        private long next = 0x7f0000000000L;

        @Override
        public LoopModel load(Path model) {
            throw new UnsupportedOperationException();
        }

        @Override
        public DeviceTensor allocate(String label, DType dtype, long... shape) {
            long bytes = Tensor.numElements(shape) * dtype.byteSize();
            TrtLoopDevice.Placement placement = new TrtLoopDevice.Placement(next, bytes);
            next += (bytes + 511) / 512 * 512;
            return new DeviceTensor(placement, label, dtype, shape, 0);
        }

        @Override
        public void free(DeviceTensor tensor) {
        }

        @Override
        public void upload(List<DeviceTensor> targets, List<Tensor> sources) {
        }

        @Override
        public void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
            launches.add(new Launch(model.name(), Map.copyOf(inputs), Map.copyOf(outputs)));
        }

        @Override
        public Replay capture(Runnable work) {
            work.run();
            return new Replay() {
                @Override
                public void launch() {
                }

                @Override
                public void close() {
                }
            };
        }

        @Override
        public List<Tensor> download(DeviceTensor... sources) {
            List<Tensor> out = new ArrayList<>();
            for (DeviceTensor s : sources) {
                out.add(Tensor.allocate(s.dtype(), s.shape()));
            }
            return out;
        }

        @Override
        public long synchronizations() {
            return 1;
        }

        @Override
        public void close() {
        }
    }

    @Test
    void stagingPacksAlignedAndCopiesDeviceContiguousRunsTogether() {
        // Three separate allocations, then two rows of one table side by side, then an empty tensor.
        long[] addresses = {0x10000, 0x90000, 0x20000, 0x50000, 0x50000 + 36, 0x70000};
        long[] bytes = {100, 12, 4096, 36, 36, 0};
        Object table = new Object();
        Object[] allocations = {new Object(), new Object(), new Object(), table, table, new Object()};
        StagingPlan plan = StagingPlan.of(0, addresses, bytes, allocations);
        assertThat(plan.offset(0)).isZero();
        assertThat(plan.offset(1)).isEqualTo(128);
        assertThat(plan.offset(2)).isEqualTo(192);
        assertThat(plan.offset(3)).isEqualTo(192 + 4096);
        assertThat(plan.offset(4)).as("continues the previous device range: no gap").isEqualTo(192 + 4096 + 36);
        assertThat(plan.end()).isGreaterThanOrEqualTo(192 + 4096 + 72);
        assertThat(plan.copies()).extracting(StagingPlan.Copy::first).containsExactly(0, 1, 2, 3);
        StagingPlan.Copy rows = plan.copies().get(3);
        assertThat(rows.count()).isEqualTo(2);
        assertThat(rows.bytes()).isEqualTo(72);
        assertThat(rows.deviceAddress()).isEqualTo(0x50000);
        for (int i = 0; i + 1 < bytes.length; i++) {
            assertThat(plan.offset(i) + bytes[i]).as("no overlap").isLessThanOrEqualTo(plan.offset(i + 1));
        }
    }

    @Test
    void stagingAppendsAfterWhatEarlierUploadsStaged() {
        StagingPlan first = StagingPlan.of(0, new long[] {0x1000}, new long[] {10}, new Object[] {new Object()});
        StagingPlan second = StagingPlan.of(first.end(), new long[] {0x2000, 0x3000}, new long[] {8, 8},
                new Object[] {new Object(), new Object()});
        assertThat(second.offset(0)).isEqualTo(64);
        assertThat(second.offset(1)).isEqualTo(128);
        assertThat(second.end()).isEqualTo(136);
        assertThat(StagingPlan.of(0, new long[0], new long[0], new Object[0]).copies()).isEmpty();
        assertThatThrownBy(() -> StagingPlan.of(0, new long[] {1}, new long[] {1, 2}, new Object[2]))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void allocationsThatHappenToTouchAreCopiedApart() {
        // cudaMalloc may hand out back-to-back ranges; one copy must not span two allocations
        long[] addresses = {0x40000, 0x40000 + 256, 0x40000 + 512};
        long[] bytes = {256, 256, 256};
        Object shared = new Object();
        StagingPlan plan = StagingPlan.of(0, addresses, bytes, new Object[] {new Object(), shared, shared});
        assertThat(plan.copies()).extracting(StagingPlan.Copy::first).containsExactly(0, 1);
        assertThat(plan.copies().get(1).count()).as("views of one allocation still move together").isEqualTo(2);
    }

    @Test
    void engineTensorsBecomeLoopSpecsWithDynamicDimensionsUnnamed() {
        TensorSpec spec = TrtLoopDevice.specOf(new TrtTensorInfo("sample", true, DType.FLOAT32, "float32",
                new long[] {-1, 4, -1, -1}), "unet.plan");
        assertThat(spec.dtype()).isEqualTo(DType.FLOAT32);
        assertThat(spec.isDynamic(0)).isTrue();
        assertThat(spec.isDynamic(1)).isFalse();
        assertThat(spec.dimensionName(0)).isEmpty();
        assertThatThrownBy(() -> TrtLoopDevice.specOf(new TrtTensorInfo("out", false, null, "fp8", new long[] {1}), "x.plan"))
                .hasMessageContaining("x.plan").hasMessageContaining("fp8").hasMessageContaining("float32");
        assertThat(List.of(spec.shape()[1])).containsExactly(4L);
    }
}
