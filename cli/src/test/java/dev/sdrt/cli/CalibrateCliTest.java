package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
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

        CliTest.Result trt = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--backend", "tensorrt");
        assertThat(trt.code()).isEqualTo(1);
        assertThat(trt.err()).contains("tensorrt").contains("not available in this build");

        CliTest.Result alpha = sdrt("calibrate", "--model", pipeline.toString(), "--out", out.toString(), "--alpha", "1.5");
        assertThat(alpha.code()).isEqualTo(2);
        assertThat(alpha.err()).contains("--alpha");
        assertThat(out).doesNotExist();
    }
}
