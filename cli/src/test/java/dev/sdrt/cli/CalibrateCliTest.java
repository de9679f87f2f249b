package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.calibration.Calibrator;
import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.trt.TensorRt;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sdrt calibrate} on a tiny random-weight pipeline. */
class CalibrateCliTest {
    @TempDir
    static Path tmp;
    static Path pipeline;

    @BeforeAll
    static void exportPipeline() {
        pipeline = tmp.resolve("tiny");
        CliTest.Result r = sdrt("export-pipeline", "--arch", "tiny", "--random-weights", "--seed", "1", "--out", pipeline.toString());
        assertThat(r.code()).as(r.err()).isZero();
    }

    @Test
    void writesAScalesFileWithProgressPerPrompt() throws Exception {
        Path out = tmp.resolve("scales.json");
        CliTest.Result r = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--prompt-count", "2",
                "--steps", "3", "--method", "percentile:99.9", "--seed", "3", "--threads", "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("prompt 1/2").contains("prompt 2/2").contains("wrote " + out);
        JsonObject json = JsonParser.parseString(Files.readString(out)).getAsJsonObject();
        assertThat(json.get("format").getAsString()).isEqualTo("sdrt-scales-1");
        JsonObject header = json.getAsJsonObject("header");
        assertThat(header.get("method").getAsString()).isEqualTo("percentile:99.9");
        assertThat(header.get("prompts").getAsInt()).isEqualTo(2);
        assertThat(header.get("prompt_source").getAsString()).isEqualTo("sdrt default prompts");
        assertThat(json.getAsJsonObject("amax").size()).isGreaterThan(10);
        assertThat(json.getAsJsonObject("smoothquant").get("alpha").getAsDouble()).isEqualTo(0.8);

        // what optimize's qdq pass reads: every op it quantizes finds its amax, SmoothQuant included
        Path int8 = tmp.resolve("unet-int8.onnx");
        CliTest.Result q = sdrt("optimize", pipeline.resolve("unet.onnx").toString(), "--passes", "qdq", "--scales", out.toString(),
                "--out", int8.toString());
        assertThat(q.code()).as(q.err()).isZero();
        assertThat(q.out()).contains("ops quantized").contains("SmoothQuant: ").doesNotContain("NOT quantized")
                .doesNotContain("without a smoothed amax");
        assertThat(int8).exists();
    }

    @Test
    void calibratesSdxlAndSd3DenoisersThroughTheirOwnLoops() throws Exception {
        for (String arch : new String[] {"tiny-sdxl", "tiny-sd3"}) {
            Path folder = tmp.resolve(arch);
            CliTest.Result e = sdrt("export-pipeline", "--arch", arch, "--random-weights", "--out", folder.toString());
            assertThat(e.code()).as(e.err()).isZero();
            Path scales = tmp.resolve(arch + "-scales.json");
            CliTest.Result r = sdrt("calibrate", "--model", folder.toString(), "--out", scales.toString(), "--prompt-count", "2",
                    "--steps", "2", "--threads", "2");
            assertThat(r.code()).as(r.err()).isZero();
            JsonObject header = JsonParser.parseString(Files.readString(scales)).getAsJsonObject().getAsJsonObject("header");
            String denoiser = arch.equals("tiny-sd3") ? "transformer.onnx" : "unet.onnx";
            assertThat(header.get("model").getAsString()).isEqualTo(denoiser);
            assertThat(header.get("scheduler").getAsString()).isEqualTo(arch.equals("tiny-sd3") ? "flow-euler" : "euler");

            // the quantized denoiser replaces the plain one and the pipeline still generates
            Path int8 = tmp.resolve(arch + "-int8.onnx");
            CliTest.Result q = sdrt("optimize", folder.resolve(denoiser).toString(), "--passes", "qdq", "--scales",
                    scales.toString(), "--out", int8.toString());
            assertThat(q.code()).as(q.err()).isZero();
            assertThat(q.out()).contains("ops quantized").doesNotContain("NOT quantized");
            Files.move(int8, folder.resolve(denoiser), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            CliTest.Result g = sdrt("generate", "--model", folder.toString(), "--prompt", "a bird", "--steps", "2",
                    "--out", tmp.resolve(arch + ".png").toString());
            assertThat(g.code()).as(g.err()).isZero();
        }
    }

    @Test
    void theCpuLoopBackendWritesTheScalesOfTheCpuBackend() throws Exception {
        Map<String, JsonObject> files = new LinkedHashMap<>();
        for (String backend : new String[] {"cpu", "cpu-loop"}) {
            Path out = tmp.resolve("scales-" + backend + ".json");
            CliTest.Result r = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--prompt-count", "1",
                    "--steps", "2", "--threads", "2", "--backend", backend);
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).contains("prompt 1/1").contains("wrote " + out);
            files.put(backend, JsonParser.parseString(Files.readString(out)).getAsJsonObject());
        }
        assertThat(files.get("cpu").getAsJsonObject("header").get("backend").getAsString()).isEqualTo("onnxruntime-cpu");
        assertThat(files.get("cpu-loop").getAsJsonObject("header").get("backend").getAsString()).isEqualTo("cpu-loop");
        JsonObject expected = files.get("cpu").getAsJsonObject("amax");
        JsonObject actual = files.get("cpu-loop").getAsJsonObject("amax");
        assertThat(actual.keySet()).isEqualTo(expected.keySet()).hasSizeGreaterThan(10);
        for (String tensor : expected.keySet()) {
            double amax = expected.get(tensor).getAsDouble();
            assertThat(amax).as(tensor).isPositive();
            assertThat(actual.get(tensor).getAsDouble()).as(tensor).isCloseTo(amax, within(1e-5 * amax));
        }
    }

    @Test
    void tensorRtWithoutAGpuSaysWhyAndWritesNothing() throws Exception {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT; the GPU suite runs the backend");
        Path out = tmp.resolve("trt-scales.json");
        CliTest.Result r = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--backend", "tensorrt");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("--backend tensorrt needs an NVIDIA GPU with TensorRT").contains(TensorRt.unavailableReason())
                .contains("--backend cpu");
        assertThat(out).doesNotExist();
        assertThat(CalibrateCommand.enginePath(pipeline, PipelineSpec.read(pipeline))).doesNotExist();
    }

    /**
     * On a GPU (tag "gpu", excluded by default): the tapped engine sees what ONNX Runtime sees, up to
     * TF32 in the engine's float32 layers, and a second run reuses the engine.
     */
    @Test
    @Tag("gpu")
    void tensorRtGivesTheScalesOfTheCpuBackend() throws Exception {
        assumeTrue(TensorRt.isAvailable(), () -> "no usable GPU/TensorRT: " + TensorRt.unavailableReason());
        Map<String, JsonObject> files = new LinkedHashMap<>();
        for (String backend : new String[] {"cpu", "tensorrt", "tensorrt"}) {
            Path out = tmp.resolve("gpu-scales-" + backend + ".json");
            CliTest.Result r = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--prompt-count", "1",
                    "--steps", "2", "--backend", backend);
            assertThat(r.code()).as(r.err()).isZero();
            if (files.containsKey(backend)) {
                assertThat(r.out()).as("the second tensorrt run").contains("reused");
            }
            files.put(backend, JsonParser.parseString(Files.readString(out)).getAsJsonObject());
        }
        assertThat(files.get("tensorrt").getAsJsonObject("header").get("backend").getAsString()).startsWith("tensorrt ");
        assertThat(CalibrateCommand.enginePath(pipeline, PipelineSpec.read(pipeline))).exists();
        JsonObject expected = files.get("cpu").getAsJsonObject("amax");
        JsonObject actual = files.get("tensorrt").getAsJsonObject("amax");
        assertThat(actual.keySet()).isEqualTo(expected.keySet());
        for (String tensor : expected.keySet()) {
            double amax = expected.get(tensor).getAsDouble();
            assertThat(actual.get(tensor).getAsDouble()).as(tensor).isCloseTo(amax, within(0.02 * amax));
        }
    }

    @Test
    void theTappedEngineIsBuiltStaticAtCalibrationsBatchAndSize() throws Exception {
        PipelineSpec spec = PipelineSpec.read(pipeline);
        Path tapped = tmp.resolve("tapped.onnx");
        EngineBuildRequest guided = CalibrateCommand.engineRequest(tapped, new Calibrator.DenoiserShapes(spec, 2, 64, 32), 4,
                tmp.resolve("timing.cache"));
        assertThat(guided.onnx()).isEqualTo(tapped);
        assertThat(guided.staticShapes()).isTrue();
        assertThat(guided.batch()).isEqualTo(DimRange.fixed(2));
        assertThat(guided.width()).isEqualTo(DimRange.fixed(64 / spec.vaeScaleFactor));
        assertThat(guided.height()).isEqualTo(DimRange.fixed(32 / spec.vaeScaleFactor));
        assertThat(guided.tokens()).isEqualTo(DimRange.fixed(spec.maxTextLength));
        assertThat(guided.optLevel()).isEqualTo(4);
        assertThat(guided.timingCache()).isEqualTo(tmp.resolve("timing.cache"));
        assertThat(CalibrateCommand.engineRequest(tapped, new Calibrator.DenoiserShapes(spec, 1, 64, 64), 3, null).batch())
                .isEqualTo(DimRange.fixed(1));
        assertThatThrownBy(() -> CalibrateCommand.engineRequest(tapped,
                new Calibrator.DenoiserShapes(spec, 2, 64 + spec.vaeScaleFactor / 2, 64), 3, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of the VAE scale factor");

        assertThat(CalibrateCommand.enginePath(pipeline, spec)).isEqualTo(pipeline.resolve("unet.calibration.plan"));
    }

    @Test
    void explainsWhatIsWrong() throws Exception {
        Path out = tmp.resolve("x.json");
        Path notPipeline = Files.createDirectories(tmp.resolve("empty"));
        CliTest.Result missing = sdrt("calibrate", "--model", notPipeline.toString(), "--out", out.toString());
        assertThat(missing.code()).isEqualTo(1);
        assertThat(missing.err()).contains("sdrt-pipeline.json").contains("export-pipeline");

        Path prompts = Files.writeString(tmp.resolve("prompts.txt"), "# nothing here\n\n");
        CliTest.Result empty = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--prompts", prompts.toString());
        assertThat(empty.code()).isEqualTo(2);
        assertThat(empty.err()).contains("holds no prompt");

        CliTest.Result method = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--method", "entropy");
        assertThat(method.code()).isEqualTo(2);
        assertThat(method.err()).contains("unknown calibration method 'entropy'").contains("mean-min");

        CliTest.Result scheduler = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--scheduler",
                "flow-euler");
        assertThat(scheduler.code()).isEqualTo(2);
        assertThat(scheduler.err()).contains("flow-matching").contains("choose one of ddim");

        CliTest.Result backend = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--backend", "cuda");
        assertThat(backend.code()).isEqualTo(2);
        assertThat(backend.err()).contains("unknown backend 'cuda'").contains("cpu-loop").contains("tensorrt");

        CliTest.Result level = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--opt-level", "7");
        assertThat(level.code()).isEqualTo(2);
        assertThat(level.err()).contains("--opt-level").contains("7");

        CliTest.Result alpha = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--alpha", "1.5");
        assertThat(alpha.code()).isEqualTo(2);
        assertThat(alpha.err()).contains("--alpha");
        assertThat(out).doesNotExist();
    }
}
