package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class OnnxModelRoundTripTest {
    @TempDir
    Path tmp;

    static List<FixtureCase> fixtures() {
        return FixtureCase.all();
    }

    private static Map<String, Tensor> run(Path model, FixtureCase fixture) {
        try (OrtRunner runner = OrtRunner.builder(model).build()) {
            return runner.run(fixture.inputs());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void fixtureSurvivesLoadSaveWithInlineWeights(FixtureCase fixture) throws Exception {
        OnnxModel model = OnnxModel.load(fixture.onnx());
        assertThat(model.graph().nodes()).isNotEmpty();
        assertThat(model.opset()).isEqualTo(17);

        Path saved = tmp.resolve("inline.onnx");
        model.save(saved);
        assertThat(OnnxModel.externalDataFiles(saved)).isEmpty();
        try (var files = Files.list(tmp)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly("inline.onnx");
        }
        OnnxChecker.check(saved);
        fixture.assertOutputsMatch(run(saved, fixture), FixtureCase.FP32_TOLERANCE);
        assertThat(OnnxModel.load(saved).graph().nodes()).hasSameSizeAs(model.graph().nodes());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void fixtureSurvivesExternalDataRoundTrip(FixtureCase fixture) throws Exception {
        OnnxModel model = OnnxModel.load(fixture.onnx());
        Path saved = tmp.resolve("sub/external.onnx");
        model.save(saved, SaveOptions.defaults().withExternalData(SaveOptions.ExternalData.ALWAYS));
        Path data = OnnxModel.externalDataFiles(saved).get(0);
        assertThat(data.getParent()).isEqualTo(saved.getParent().toAbsolutePath());
        assertThat(Files.size(saved)).isLessThan(Files.size(fixture.onnx()));
        OnnxChecker.check(saved);

        OnnxModel reloaded = OnnxModel.load(saved);
        assertThat(reloaded.graph().parameterCount()).isEqualTo(model.graph().parameterCount());
        fixture.assertOutputsMatch(run(saved, fixture), FixtureCase.FP32_TOLERANCE);

        // Saving the reloaded model over its own files must not corrupt the weights it is reading.
        reloaded.save(saved, SaveOptions.defaults().withExternalData(SaveOptions.ExternalData.ALWAYS));
        fixture.assertOutputsMatch(run(saved, fixture), FixtureCase.FP32_TOLERANCE);
        assertThat(OnnxModel.externalDataFiles(saved)).as("same weights, same content-named file").containsExactly(data);
        try (var files = Files.list(saved.getParent())) {
            assertThat(files.map(p -> p.getFileName().toString()).toList())
                    .as("no temp or lock files left behind").containsExactlyInAnyOrder("external.onnx", data.getFileName().toString());
        }
    }

    @Test
    void builtModelRunsAndMatchesHandComputation() throws Exception {
        Path saved = tmp.resolve("linear.onnx");
        TinyModels.linearRelu().save(saved);
        OnnxChecker.check(saved);
        float[] x = {1, 2, 3, -1, 0.5f, 2};
        try (OrtRunner runner = OrtRunner.builder(saved).build()) {
            Tensor y = runner.run(Map.of("x", Tensor.ofFloats(new long[] {2, 3}, x))).get("y");
            assertThat(y.toFloatArray()).containsExactly(TinyModels.linearReluReference(x),
                    org.assertj.core.data.Offset.offset(1e-6f));
        }
    }
}
