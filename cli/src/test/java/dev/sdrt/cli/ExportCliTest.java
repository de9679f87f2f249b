package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.inputArgs;
import static dev.sdrt.cli.CliTest.readOutputs;
import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.FixtureCase;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code sdrt export} as a user runs it: export, then run the result on the fixture inputs. */
class ExportCliTest {
    @TempDir
    Path tmp;

    static List<FixtureCase> fixtures() {
        return FixtureCase.all();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void exportThenRunOnnxMatchesDiffusers(FixtureCase fixture) throws Exception {
        Path onnx = tmp.resolve(fixture.name() + ".onnx");
        CliTest.Result export = sdrt("export", "--from", fixture.folder().toString(), "--out", onnx.toString());
        assertThat(export.code()).as(export.err()).isZero();
        assertThat(export.out()).contains("wrote " + onnx);
        assertThat(export.err()).doesNotContain("not used");

        List<String> args = new ArrayList<>(List.of("run-onnx", onnx.toString()));
        args.addAll(inputArgs(fixture));
        args.addAll(List.of("--output-dir", tmp.resolve("out").toString()));
        CliTest.Result run = sdrt(args.toArray(String[]::new));
        assertThat(run.code()).as(run.err()).isZero();
        fixture.assertOutputsMatch(readOutputs(tmp.resolve("out"), fixture), FixtureCase.FP32_TOLERANCE);
    }

    @Test
    void fp16ExportStaysCloseToTheReference() throws Exception {
        FixtureCase fixture = FixtureCase.named("tiny_sd_unet");
        Path onnx = tmp.resolve("unet16.onnx");
        CliTest.Result export = sdrt("export", "--from", fixture.folder().toString(), "--out", onnx.toString(), "--precision", "fp16");
        assertThat(export.code()).as(export.err()).isZero();
        assertThat(sdrt("inspect", onnx.toString()).out()).containsPattern("sample\\s+float16");
    }

    @Test
    void randomArchitectureExportNeedsRandomWeightsAndAComponent() {
        CliTest.Result noRandom = sdrt("export", "--arch", "sd15", "--component", "unet", "--out", tmp.resolve("x.onnx").toString());
        assertThat(noRandom.code()).isEqualTo(2);
        assertThat(noRandom.err()).contains("--random-weights").contains("downloads no checkpoints");

        CliTest.Result noComponent = sdrt("export", "--arch", "sd15", "--random-weights", "--out", tmp.resolve("x.onnx").toString());
        assertThat(noComponent.err()).contains("--component").contains("unet");

        CliTest.Result unknown = sdrt("export", "--arch", "sd99", "--component", "unet", "--random-weights", "--out",
                tmp.resolve("x.onnx").toString());
        assertThat(unknown.err()).contains("unknown architecture 'sd99'").contains("sd15");

        CliTest.Result badComponent = sdrt("export", "--arch", "sd15", "--component", "vae", "--random-weights", "--out",
                tmp.resolve("x.onnx").toString());
        assertThat(badComponent.err()).contains("unknown component 'vae'").contains("vae-decoder");
        assertThat(tmp.resolve("x.onnx")).doesNotExist();
    }

    @Test
    void randomTinyExportIsReproducibleForASeed() throws Exception {
        Path a = tmp.resolve("a.onnx");
        Path b = tmp.resolve("b.onnx");
        Path c = tmp.resolve("c.onnx");
        assertThat(sdrt("export", "--arch", "tiny", "--component", "unet", "--random-weights", "--seed", "7", "--out", a.toString()).code()).isZero();
        assertThat(sdrt("export", "--arch", "tiny", "--component", "unet", "--random-weights", "--seed", "7", "--out", b.toString()).code()).isZero();
        assertThat(sdrt("export", "--arch", "tiny", "--component", "unet", "--random-weights", "--seed", "8", "--out", c.toString()).code()).isZero();
        assertThat(java.nio.file.Files.readAllBytes(a)).isEqualTo(java.nio.file.Files.readAllBytes(b));
        assertThat(java.nio.file.Files.readAllBytes(a)).isNotEqualTo(java.nio.file.Files.readAllBytes(c));
    }

    @Test
    void exportFromAFolderWithoutWeightsNamesTheProblem() throws Exception {
        Path folder = tmp.resolve("empty");
        java.nio.file.Files.createDirectories(folder);
        java.nio.file.Files.copy(FixtureCase.named("tiny_sd_unet").folder().resolve("config.json"), folder.resolve("config.json"));
        CliTest.Result r = sdrt("export", "--from", folder.toString(), "--out", tmp.resolve("x.onnx").toString());
        assertThat(r.code()).isNotZero();
        assertThat(r.err()).contains("safetensors");
    }
}
