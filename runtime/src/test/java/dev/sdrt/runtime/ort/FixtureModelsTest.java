package dev.sdrt.runtime.ort;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.tensor.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs every fixture's model.onnx (torch.onnx.export of a tiny diffusers model) on its reference
 * inputs and compares with the outputs diffusers computed: the agreement the fixtures' README
 * promises is max|ours − reference| / max|reference| ≤ 1e-4.
 */
class FixtureModelsTest {

    private static final double TOLERANCE = FixtureCase.FP32_TOLERANCE;

    static List<FixtureCase> fixtures() {
        return FixtureCase.all();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void modelReproducesTheReferenceOutputs(FixtureCase fixture) {
        assertThat(fixture.inputs()).as("in_*.npy in %s", fixture.folder()).isNotEmpty();
        assertThat(fixture.expected()).as("out_*.npy in %s", fixture.folder()).isNotEmpty();
        try (OrtRunner runner = OrtRunner.builder(fixture.onnx()).build()) {
            assertThat(runner.inputs().keySet()).containsExactlyInAnyOrderElementsOf(fixture.inputs().keySet());
            assertThat(runner.outputs().keySet()).containsExactlyInAnyOrderElementsOf(fixture.expected().keySet());

            Map<String, Tensor> outputs = runner.run(fixture.inputs());

            assertThat(outputs.keySet()).containsExactlyElementsOf(runner.outputs().keySet());
            fixture.assertOutputsMatch(outputs, TOLERANCE);
        }
    }

    @Test
    void sdUnetMatchesDiffusers() throws IOException {
        Path folder = Fixtures.model("tiny_sd_unet");
        try (OrtRunner runner = OrtRunner.builder(folder.resolve("model.onnx")).build()) {
            assertThat(runner.inputs().values()).extracting(TensorSpec::toString).containsExactly(
                    "sample: float32 [2, 4, 16, 16]",
                    "timestep: float32 [2]",
                    "encoder_hidden_states: float32 [2, 8, 32]");
            assertThat(runner.outputs().values()).extracting(TensorSpec::toString)
                    .containsExactly("out_sample: float32 [2, 4, 16, 16]");

            Map<String, Tensor> outputs = runner.run(Map.of(
                    "sample", Npy.read(folder.resolve("in_sample.npy")),
                    "timestep", Npy.read(folder.resolve("in_timestep.npy")),
                    "encoder_hidden_states", Npy.read(folder.resolve("in_encoder_hidden_states.npy"))));

            Tensor outSample = outputs.get("out_sample");
            assertThat(outSample.dtype()).isEqualTo(DType.FLOAT32);
            assertThat(Tensors.maxRelDiff(outSample, Npy.read(folder.resolve("out_out_sample.npy"))))
                    .isLessThanOrEqualTo(TOLERANCE);
        }
    }

    @Test
    void everyOptimizationLevelGivesTheSameResult() {
        FixtureCase vae = FixtureCase.named("tiny_vae_decoder");
        for (OrtOptLevel level : OrtOptLevel.values()) {
            try (OrtRunner runner = OrtRunner.builder(vae.onnx())
                    .optimizationLevel(level).intraOpThreads(1).interOpThreads(2).build()) {
                assertThat(Tensors.maxRelDiff(runner.run(vae.inputs()).get("sample"), vae.expected().get("sample")))
                        .as(level.toString()).isLessThanOrEqualTo(TOLERANCE);
            }
        }
    }
}
