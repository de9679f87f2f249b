package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtOptLevel;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OrtSessionFactoryTest {

    @Test
    void cpuRunnerRunsAFixtureToItsReference() {
        FixtureCase vae = FixtureCase.named("tiny_vae_decoder");
        OrtSessionFactory.Config config = OrtSessionFactory.Config.cpu().withThreads(2, 1).withOptLevel(OrtOptLevel.BASIC);
        try (OrtRunner runner = OrtSessionFactory.cpuRunner(vae.onnx(), config)) {
            vae.assertOutputsMatch(runner.run(vae.inputs()), FixtureCase.FP32_TOLERANCE);
        }
    }

    @Test
    void rawCpuSessionRunsAFixture() throws OrtException {
        FixtureCase clip = FixtureCase.named("tiny_clip_text");
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Tensor ids = clip.inputs().get("input_ids");
        try (OrtSession session = OrtSessionFactory.open(clip.onnx(), OrtSessionFactory.Config.cpu().withThreads(2, 2));
                OnnxTensor input = OnnxTensor.createTensor(env, ids.buffer().asLongBuffer(), ids.shape());
                OrtSession.Result result = session.run(Map.of("input_ids", input))) {
            OnnxTensor hidden = (OnnxTensor) result.get("last_hidden_state").orElseThrow();
            Tensor got = Tensor.copyOf(DType.FLOAT32, hidden.getInfo().getShape(), hidden.getByteBuffer());
            assertThat(Tensors.maxRelDiff(got, clip.expected().get("last_hidden_state")))
                    .isLessThanOrEqualTo(FixtureCase.FP32_TOLERANCE);
        }
    }

    @Test
    void gpuProvidersOnTheCpuArtifactFailWithAnExplanation() {
        assumeFalse(OrtSessionFactory.isAvailable(OrtSessionFactory.Provider.CUDA), "this ONNX Runtime has CUDA");
        FixtureCase vae = FixtureCase.named("tiny_vae_decoder");

        assertThatThrownBy(() -> OrtSessionFactory.open(vae.onnx(), OrtSessionFactory.Config.cuda(0)))
                .isInstanceOf(OrtProviderUnavailableException.class)
                .hasMessageContaining("CUDA execution provider is not available")
                .hasMessageContaining("-Port-gpu")
                .hasMessageContaining("onnxruntime_gpu");
        assertThatThrownBy(() -> OrtSessionFactory.open(vae.onnx(),
                        OrtSessionFactory.Config.tensorRt(0, true, null)))
                .isInstanceOf(OrtProviderUnavailableException.class)
                .hasMessageContaining("TENSORRT execution provider is not available");
    }

    @Test
    void cpuRunnerRejectsGpuConfigs() {
        FixtureCase vae = FixtureCase.named("tiny_vae_decoder");
        assertThatThrownBy(() -> OrtSessionFactory.cpuRunner(vae.onnx(), OrtSessionFactory.Config.cuda(0)))
                .hasMessageContaining("use open()");
        assertThatThrownBy(() -> OrtSessionFactory.Config.cpu().withThreads(0, 1)).hasMessageContaining("at least 1");
    }
}
