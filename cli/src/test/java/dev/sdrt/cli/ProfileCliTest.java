package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.trt.TensorRt;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sdrt profile} on ONNX Runtime, and its refusals. */
class ProfileCliTest {

    @TempDir
    static Path tmp;

    static Path pipeline;

    @BeforeAll
    static void export() {
        pipeline = CliTest.exportRandomPipeline(tmp, "tiny");
    }

    @Test
    void profilesAnExportedUnetWithItsSymbolicDimensionsSized() throws Exception {
        Path report = tmp.resolve("unet-profile.md");
        CliTest.Result r = sdrt("profile", pipeline.resolve("unet.onnx").toString(), "--runs", "2", "--warmup", "1",
                "--dim", "height=16", "--dim", "width=16", "--top", "5", "--threads", "1", "--out", report.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("Node profile of").contains("medians of 2 runs on ONNX Runtime (CPU, 1 threads)")
                .contains("| op type | nodes | ms | share |").contains("| Conv |").contains("slowest nodes (5 of ")
                .contains("wrote " + report);
        assertThat(Files.readString(report)).startsWith("Node profile of").contains("| Conv |");
    }

    @Test
    void textEncoderGetsTokenIdsItsVocabularyHolds() {
        CliTest.Result r = sdrt("profile", pipeline.resolve("text_encoder.onnx").toString(), "--runs", "1", "--warmup", "0",
                "--dim", "batch=1");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("| Gather |");
    }

    @Test
    void aMalformedDimIsAUsageError() {
        CliTest.Result r = sdrt("profile", pipeline.resolve("unet.onnx").toString(), "--dim", "height");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--dim must look like NAME=SIZE");
    }

    @Test
    void anUnsizedDimensionIsNamedWithTheOptionThatSizesIt() {
        TensorSpec frames = new TensorSpec("video", DType.FLOAT32, new long[] {-1, 4, -1}, List.of("batch", "", "frames"));
        Map<String, TensorSpec> specs = Map.of("video", frames);
        assertThatThrownBy(() -> ProfileCommand.inputsFor(specs, ProfileCommand.DEFAULT_DIMS, Map.of()))
                .hasMessageContaining("axis 2 is 'frames'; give its size with --dim frames=SIZE");
        Tensor sized = ProfileCommand.inputsFor(specs, Map.of("batch", 3L, "frames", 5L), Map.of()).get("video");
        assertThat(sized.shape()).containsExactly(3, 4, 5);
        TensorSpec unnamed = new TensorSpec("x", DType.FLOAT32, new long[] {-1}, List.of(""));
        assertThatThrownBy(() -> ProfileCommand.inputsFor(Map.of("x", unnamed), Map.of(), Map.of()))
                .hasMessageContaining("dynamic and unnamed; give the input with --input x=FILE.npy");
        assertThatThrownBy(() -> ProfileCommand.inputsFor(specs, Map.of(), Map.of("y", sized)))
                .hasMessageContaining("--input y: the model has no such input");
    }

    @Test
    void aMissingModelIsRefused() {
        CliTest.Result r = sdrt("profile", tmp.resolve("nope.onnx").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("nope.onnx does not exist");
    }

    @Test
    void anEngineWithoutAGpuSaysWhy() throws Exception {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT; the GPU suite profiles engines");
        Path plan = Files.write(tmp.resolve("unet.plan"), new byte[] {1, 2, 3});
        CliTest.Result r = sdrt("profile", plan.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("needs an NVIDIA GPU and TensorRT").contains("profile the .onnx file");
        CliTest.Result dims = sdrt("profile", plan.toString(), "--dim", "batch=1");
        assertThat(dims.err()).contains("--dim, --input and --threads apply to ONNX models");
    }
}
