package dev.sdrt.runtime.ort;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OrtRunnerTest {

    @TempDir
    Path temp;

    /** sample: float32 [batch, 4, 8] (named dynamic), timestep: int64 [?] (unnamed dynamic). */
    private OrtRunner denoiserLike() throws IOException {
        Path model = new TinyOnnx()
                .input("sample", TinyOnnx.FLOAT, "batch", 4L, 8L)
                .input("timestep", TinyOnnx.INT64, (Object) null)
                .identity("sample", "noise_pred")
                .identity("timestep", "echo_timestep")
                .output("noise_pred", TinyOnnx.FLOAT, "batch", 4L, 8L)
                .output("echo_timestep", TinyOnnx.INT64, (Object) null)
                .write(temp.resolve("denoiser.onnx"));
        return OrtRunner.builder(model).intraOpThreads(1).build();
    }

    private static Map<String, Tensor> feeds(Object... nameTensorPairs) {
        Map<String, Tensor> feeds = new LinkedHashMap<>();
        for (int i = 0; i < nameTensorPairs.length; i += 2) {
            feeds.put((String) nameTensorPairs[i], (Tensor) nameTensorPairs[i + 1]);
        }
        return feeds;
    }

    // ---- model description ----

    @Test
    void describesInputsAndOutputsWithDynamicDimensions() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThat(runner.inputs().keySet()).containsExactly("sample", "timestep");
            TensorSpec sample = runner.inputs().get("sample");
            assertThat(sample.dtype()).isEqualTo(DType.FLOAT32);
            assertThat(sample.shape()).containsExactly(-1, 4, 8);
            assertThat(sample.dimensionName(0)).isEqualTo("batch");
            assertThat(sample).hasToString("sample: float32 [batch, 4, 8]");
            assertThat(runner.inputs().get("timestep")).hasToString("timestep: int64 [?]");
            assertThat(runner.outputs().keySet()).as("model order, not sorted")
                    .containsExactly("noise_pred", "echo_timestep");
        }
    }

    // ---- running ----

    @Test
    void runsWithAnyPositiveSizeForDynamicDimensionsAndReturnsOutputsInModelOrder() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            for (int batch : new int[] {1, 3}) {
                float[] values = new float[batch * 4 * 8];
                for (int i = 0; i < values.length; i++) {
                    values[i] = i * 0.25f - 3;
                }
                Map<String, Tensor> outputs = runner.run(feeds(
                        "timestep", Tensor.ofLongs(new long[] {batch}, new long[batch]),
                        "sample", Tensor.ofFloats(new long[] {batch, 4, 8}, values)));
                assertThat(outputs.keySet()).containsExactly("noise_pred", "echo_timestep");
                assertThat(outputs.get("noise_pred").shape()).containsExactly(batch, 4, 8);
                assertThat(outputs.get("noise_pred").toFloatArray()).containsExactly(values);
                assertThat(outputs.get("echo_timestep").toLongArray()).hasSize(batch);
            }
        }
    }

    /** Every DType goes into ONNX Runtime and comes back bit for bit (Identity copies bytes). */
    @Test
    void everyDtypeRoundTripsThroughTheModel() throws IOException {
        Map<DType, Integer> onnxTypes = Map.of(
                DType.FLOAT32, TinyOnnx.FLOAT, DType.FLOAT16, TinyOnnx.FLOAT16, DType.BFLOAT16, TinyOnnx.BFLOAT16,
                DType.FLOAT64, TinyOnnx.DOUBLE, DType.INT64, TinyOnnx.INT64, DType.INT32, TinyOnnx.INT32,
                DType.INT8, TinyOnnx.INT8, DType.UINT8, TinyOnnx.UINT8, DType.BOOL, TinyOnnx.BOOL);
        assertThat(onnxTypes.keySet()).containsExactlyInAnyOrder(DType.values());
        for (DType dtype : DType.values()) {
            int onnxType = onnxTypes.get(dtype);
            Path model = new TinyOnnx().input("x", onnxType, 2L, 3L).identity("x", "y").output("y", onnxType, 2L, 3L)
                    .write(temp.resolve(dtype + ".onnx"));
            Tensor input = Tensor.allocate(dtype, 2, 3);
            ByteBuffer bytes = input.buffer();
            for (int i = 0; bytes.hasRemaining(); i++) {
                bytes.put(dtype == DType.BOOL ? (byte) (i % 2) : (byte) (i * 29 + 3));
            }
            try (OrtRunner runner = OrtRunner.builder(model).intraOpThreads(1).build()) {
                assertThat(runner.inputs().get("x").dtype()).isEqualTo(dtype);
                Tensor output = runner.run(Map.of("x", input)).get("y");
                assertThat(output.dtype()).as(dtype.toString()).isEqualTo(dtype);
                assertThat(output.shape()).containsExactly(2, 3);
                assertThat(output.buffer()).as(dtype.toString()).isEqualTo(input.buffer());
            }
        }
    }

    @Test
    void outputsStayValidAfterClose() throws IOException {
        Tensor output;
        try (OrtRunner runner = denoiserLike()) {
            output = runner.run(feeds(
                    "sample", Tensor.ofFloats(new long[] {1, 4, 8}, new float[32]),
                    "timestep", Tensor.ofLongs(new long[] {1}, new long[] {999}))).get("echo_timestep");
        }
        assertThat(output.toLongArray()).containsExactly(999);
    }

    @Test
    void runAfterCloseFailsAndCloseTwiceIsHarmless() throws IOException {
        OrtRunner runner = denoiserLike();
        runner.close();
        assertThatCode(runner::close).doesNotThrowAnyException();
        assertThatThrownBy(() -> runner.run(Map.of()))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("is closed");
    }

    // ---- input validation ----

    @Test
    void missingInput() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds("sample", Tensor.zeros(DType.FLOAT32, 1, 4, 8))))
                    .isInstanceOf(ModelInputException.class)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("inputs do not fit model " + runner.model() + ":\n"
                            + "  - missing input 'timestep' (int64 [?])\n"
                            + "the model expects:\n"
                            + "  sample: float32 [batch, 4, 8]\n"
                            + "  timestep: int64 [?]");
        }
    }

    @Test
    void unknownInput() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds(
                            "sample", Tensor.zeros(DType.FLOAT32, 1, 4, 8),
                            "timestep", Tensor.zeros(DType.INT64, 1),
                            "timesteps", Tensor.zeros(DType.INT64, 1))))
                    .isInstanceOf(ModelInputException.class)
                    .satisfies(e -> assertThat(((ModelInputException) e).problems()).containsExactly(
                            "unknown input 'timesteps'; the model's inputs are [sample, timestep]"));
        }
    }

    @Test
    void wrongDtype() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds(
                            "sample", Tensor.zeros(DType.FLOAT16, 1, 4, 8),
                            "timestep", Tensor.zeros(DType.INT64, 1))))
                    .isInstanceOf(ModelInputException.class)
                    .hasMessageContaining("input 'sample' is float16 [1, 4, 8], the model expects float32 [batch, 4, 8]")
                    .hasMessageContaining("the model expects:\n  sample: float32 [batch, 4, 8]\n  timestep: int64 [?]");
        }
    }

    @Test
    void wrongRank() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds(
                            "sample", Tensor.zeros(DType.FLOAT32, 4, 8),
                            "timestep", Tensor.zeros(DType.INT64, 1))))
                    .isInstanceOf(ModelInputException.class)
                    .hasMessageContaining("input 'sample' has rank 2 (float32 [4, 8]), the model expects rank 3");
        }
    }

    @Test
    void wrongFixedDimension() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds(
                            "sample", Tensor.zeros(DType.FLOAT32, 2, 4, 9),
                            "timestep", Tensor.zeros(DType.INT64, 2))))
                    .isInstanceOf(ModelInputException.class)
                    .hasMessageContaining("input 'sample' has shape [2, 4, 9], the model expects float32 [batch, 4, 8]: "
                            + "dimension 2 is 9 but must be 8");
        }
    }

    @Test
    void zeroSizedDynamicDimension() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds(
                            "sample", Tensor.zeros(DType.FLOAT32, 0, 4, 8),
                            "timestep", Tensor.zeros(DType.INT64, 1))))
                    .isInstanceOf(ModelInputException.class)
                    .hasMessageContaining("dimension 0 (batch) is 0 but must be positive");
        }
    }

    @Test
    void everyProblemIsReportedAtOnce() throws IOException {
        try (OrtRunner runner = denoiserLike()) {
            assertThatThrownBy(() -> runner.run(feeds(
                            "sample", Tensor.zeros(DType.FLOAT32, 1, 3, 8),
                            "latents", Tensor.zeros(DType.FLOAT32, 1))))
                    .isInstanceOf(ModelInputException.class)
                    .satisfies(e -> assertThat(((ModelInputException) e).problems()).hasSize(3));
        }
    }

    @Test
    void fixtureModelRejectsAWrongBatchSize() {
        Path model = Fixtures.model("tiny_sd_unet").resolve("model.onnx");
        try (OrtRunner runner = OrtRunner.builder(model).build()) {
            assertThatThrownBy(() -> runner.run(Map.of(
                            "sample", Tensor.zeros(DType.FLOAT32, 1, 4, 16, 16),
                            "timestep", Tensor.zeros(DType.FLOAT32, 1),
                            "encoder_hidden_states", Tensor.zeros(DType.FLOAT32, 1, 8, 32))))
                    .isInstanceOf(ModelInputException.class)
                    .hasMessageContaining("input 'sample' has shape [1, 4, 16, 16], the model expects float32 [2, 4, 16, 16]")
                    .hasMessageContaining("timestep: float32 [2]")
                    .hasMessageContaining("encoder_hidden_states: float32 [2, 8, 32]");
        }
    }

    // ---- loading ----

    @Test
    void missingModelFileNamesThePath() {
        Path model = temp.resolve("nowhere/unet.onnx");
        assertThatThrownBy(() -> OrtRunner.builder(model).build())
                .isInstanceOf(ModelLoadException.class)
                .hasMessage("cannot load ONNX model " + model + ": file not found");
        assertThatThrownBy(() -> OrtRunner.builder(temp).build())
                .isInstanceOf(ModelLoadException.class)
                .hasMessage("cannot load ONNX model " + temp + ": not a regular file");
    }

    @Test
    void malformedModelFileNamesThePath() throws IOException {
        Path model = Files.writeString(temp.resolve("broken.onnx"), "this is not a protobuf");
        assertThatThrownBy(() -> OrtRunner.builder(model).build())
                .isInstanceOf(ModelLoadException.class)
                .hasMessageStartingWith("cannot load ONNX model " + model + ": ")
                .satisfies(e -> assertThat(((ModelLoadException) e).model()).isEqualTo(model));
    }

    @Test
    void modelWithAnUnsupportedElementTypeIsRefusedAtLoad() throws IOException {
        Path model = new TinyOnnx().input("x", TinyOnnx.UINT16, 2L).identity("x", "y").output("y", TinyOnnx.UINT16, 2L)
                .write(temp.resolve("uint16.onnx"));
        assertThatThrownBy(() -> OrtRunner.builder(model).build())
                .isInstanceOf(ModelLoadException.class)
                .hasMessageContaining(model.toString())
                .hasMessageContaining("input 'x' has element type ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16");
    }

    @Test
    void builderRejectsThreadCountsBelowOne() {
        OrtRunner.Builder builder = OrtRunner.builder(temp.resolve("m.onnx"));
        assertThatThrownBy(() -> builder.intraOpThreads(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("intraOpThreads must be at least 1, got 0");
        assertThatThrownBy(() -> builder.interOpThreads(-1))
                .hasMessage("interOpThreads must be at least 1, got -1");
    }
}
