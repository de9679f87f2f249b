package dev.sdrt.runtime.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.loop.DeviceTensor;
import dev.sdrt.runtime.loop.ForwardingLoopDevice;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.loop.LoopModel;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A model on a loop device as a per-step denoiser: what ONNX Runtime gives, one wait per call, buffers kept. */
class LoopDeviceDenoiserTest {

    /** The CPU loop device, counting the calls the denoiser makes of it. */
    private static final class CountingDevice extends ForwardingLoopDevice {
        final List<String> allocated = new ArrayList<>();
        final List<String> freed = new ArrayList<>();
        int uploads;
        int launches;

        CountingDevice() {
            super(new CpuLoopDevice(2));
        }

        @Override
        public DeviceTensor allocate(String label, DType dtype, long... shape) {
            allocated.add(label + Tensor.formatShape(shape));
            return delegate.allocate(label, dtype, shape);
        }

        @Override
        public void free(DeviceTensor tensor) {
            freed.add(tensor.label() + Tensor.formatShape(tensor.shape()));
            delegate.free(tensor);
        }

        @Override
        public void upload(List<DeviceTensor> targets, List<Tensor> sources) {
            uploads++;
            delegate.upload(targets, sources);
        }

        @Override
        public void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
            launches++;
            delegate.launch(model, inputs, outputs);
        }
    }

    @Test
    void givesWhatOnnxRuntimeGivesWaitingOncePerCallInTheSameBuffers() throws Exception {
        Path unet = Fixtures.model("tiny_sd_unet");
        Map<String, Tensor> feeds = new LinkedHashMap<>();
        for (String input : List.of("sample", "timestep", "encoder_hidden_states")) {
            feeds.put(input, Npy.read(unet.resolve("in_" + input + ".npy")));
        }
        Map<String, Tensor> direct;
        try (OrtRunner ort = OrtRunner.builder(unet.resolve("model.onnx")).intraOpThreads(2).build()) {
            direct = ort.run(feeds);
        }
        float[] reference = Npy.read(unet.resolve("out_out_sample.npy")).toFloatArray();

        try (CountingDevice device = new CountingDevice();
                LoopDeviceDenoiser denoiser = LoopDeviceDenoiser.open(device, unet.resolve("model.onnx"))) {
            assertThat(denoiser.inputs().keySet()).containsExactly("sample", "timestep", "encoder_hidden_states");
            assertThat(denoiser.name()).contains("model.onnx").contains("the CPU");
            for (int call = 1; call <= 3; call++) {
                Map<String, Tensor> out = denoiser.run(feeds);
                assertThat(out.keySet()).containsExactly("out_sample");
                assertThat(out.get("out_sample").shape()).containsExactly(2, 4, 16, 16);
                float[] values = out.get("out_sample").toFloatArray();
                assertThat(values).containsExactly(direct.get("out_sample").toFloatArray());
                assertThat(maxAbsDiff(values, reference) / maxAbs(reference)).isLessThan(1e-4);
                assertThat(device.synchronizations()).isEqualTo(call);
                assertThat(device.uploads).isEqualTo(call);
                assertThat(device.launches).isEqualTo(call);
            }
            assertThat(device.allocated).as("allocated on the first call only").containsExactly("sample[2, 4, 16, 16]",
                    "timestep[2]", "encoder_hidden_states[2, 8, 32]", "out_sample[2, 4, 16, 16]");

            // new contents in the same buffers give new outputs, not the last call's
            float[] halved = feeds.get("sample").toFloatArray();
            for (int i = 0; i < halved.length; i++) {
                halved[i] *= 0.5f;
            }
            Map<String, Tensor> other = new LinkedHashMap<>(feeds);
            other.put("sample", Tensor.ofFloats(new long[] {2, 4, 16, 16}, halved));
            assertThat(denoiser.run(other).get("out_sample").toFloatArray())
                    .isNotEqualTo(direct.get("out_sample").toFloatArray());
            assertThat(device.allocated).hasSize(4);
            assertThat(device.freed).isEmpty();
            denoiser.close();
            assertThat(device.freed).as("closing frees its tensors").containsExactlyElementsOf(device.allocated);
        }
    }

    @Test
    void namesWhatIsWrongWithTheFeeds() throws Exception {
        Path unet = Fixtures.model("tiny_sd_unet");
        Tensor sample = Npy.read(unet.resolve("in_sample.npy"));
        Tensor timestep = Npy.read(unet.resolve("in_timestep.npy"));
        try (CpuLoopDevice device = new CpuLoopDevice(1);
                LoopDeviceDenoiser denoiser = LoopDeviceDenoiser.open(device, unet.resolve("model.onnx"))) {
            assertThatThrownBy(() -> denoiser.run(Map.of("sample", sample, "timestep", timestep)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'encoder_hidden_states'");
            assertThatThrownBy(() -> denoiser.run(Map.of("sample", sample, "timestep", timestep, "encoder_hidden_states",
                    Tensor.zeros(DType.FLOAT32, 2, 8, 32), "text_embeds", Tensor.zeros(DType.FLOAT32, 2, 32))))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no input 'text_embeds'");
            assertThatThrownBy(() -> denoiser.run(Map.of("sample", sample, "timestep", timestep, "encoder_hidden_states",
                    Tensor.zeros(DType.FLOAT32, 2, 8, 16))))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("encoder_hidden_states");
            assertThat(device.synchronizations()).isZero();
        }
    }

    @Test
    void refusesAnOutputItCannotSizeBeforeRunning() {
        long dynamic = TensorSpec.DYNAMIC;
        LoopModel unsized = new LoopModel() {
            @Override
            public String name() {
                return "unsized.onnx";
            }

            @Override
            public Map<String, TensorSpec> inputs() {
                return Map.of("x", new TensorSpec("x", DType.FLOAT32, new long[] {dynamic, 3}, List.of("batch", "")));
            }

            @Override
            public Map<String, TensorSpec> outputs() {
                return Map.of("y", new TensorSpec("y", DType.FLOAT32, new long[] {dynamic, dynamic}, List.of("batch", "")));
            }

            @Override
            public void close() {
            }
        };
        try (CpuLoopDevice device = new CpuLoopDevice(1); LoopDeviceDenoiser denoiser = new LoopDeviceDenoiser(device, unsized)) {
            assertThatThrownBy(() -> denoiser.run(Map.of("x", Tensor.zeros(DType.FLOAT32, 2, 3))))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("unsized.onnx").hasMessageContaining("output 'y'").hasMessageContaining("dimension 1")
                    .hasMessageContaining("cannot infer output shapes");
            assertThat(device.synchronizations()).isZero();
        }
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max;
    }

    private static double maxAbs(float[] a) {
        double max = 0;
        for (float v : a) {
            max = Math.max(max, Math.abs(v));
        }
        return max;
    }
}
