package dev.sdrt.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The stable CLI commands, driven the way a user calls them. */
class CliTest {
    @TempDir
    Path tmp;

    record Result(int code, String out, String err) {
    }

    static Result sdrt(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = SdrtMain.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Result(code, out.toString(), err.toString());
    }

    /**
     * Exports a random-weight pipeline of {@code arch} to {@code parent/arch} with {@code sdrt
     * export-pipeline}, plus {@code extraArgs} ({@code --seed}, {@code --deepcache-branch}), and fails
     * the test when the export fails.
     */
    static Path exportRandomPipeline(Path parent, String arch, String... extraArgs) {
        Path out = parent.resolve(arch);
        List<String> args = new ArrayList<>(List.of("export-pipeline", "--arch", arch, "--random-weights", "--out", out.toString()));
        args.addAll(List.of(extraArgs));
        Result r = sdrt(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        return out;
    }

    static List<FixtureCase> fixtures() {
        return FixtureCase.all();
    }

    static List<String> inputArgs(FixtureCase fixture) {
        List<String> args = new ArrayList<>();
        for (String name : fixture.inputs().keySet()) {
            args.add("--input");
            args.add(name + "=" + fixture.folder().resolve("in_" + name + ".npy"));
        }
        return args;
    }

    static Map<String, Tensor> readOutputs(Path dir, FixtureCase fixture) throws Exception {
        Map<String, Tensor> outputs = new HashMap<>();
        for (String name : fixture.expected().keySet()) {
            Path f = dir.resolve("out_" + name + ".npy");
            if (Files.exists(f)) {
                outputs.put(name, Npy.read(f));
            }
        }
        return outputs;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void runOnnxReproducesTheFixtureOutputs(FixtureCase fixture) throws Exception {
        List<String> args = new ArrayList<>(List.of("run-onnx", fixture.onnx().toString()));
        args.addAll(inputArgs(fixture));
        args.addAll(List.of("--output-dir", tmp.toString()));
        Result r = sdrt(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        fixture.assertOutputsMatch(readOutputs(tmp, fixture), FixtureCase.FP32_TOLERANCE);
    }

    @Test
    void runOnnxListsWhatTheModelExpectsWhenAnInputIsMissingOrWrong() throws Exception {
        FixtureCase unet = FixtureCase.named("tiny_sd_unet");
        Path sample = unet.folder().resolve("in_sample.npy");
        Result missing = sdrt("run-onnx", unet.onnx().toString(), "--input", "sample=" + sample, "--output-dir", tmp.toString());
        assertThat(missing.code()).isEqualTo(2);
        assertThat(missing.err()).contains("missing input 'timestep'").contains("encoder_hidden_states: float32 [2, 8, 32]");

        Path wrong = tmp.resolve("wrong.npy");
        Npy.write(wrong, Tensor.zeros(dev.sdrt.runtime.tensor.DType.FLOAT32, 2, 4, 8, 8));
        List<String> args = new ArrayList<>(List.of("run-onnx", unet.onnx().toString()));
        args.addAll(inputArgs(unet));
        args.set(args.indexOf("sample=" + sample), "sample=" + wrong);
        args.addAll(List.of("--output-dir", tmp.resolve("o").toString()));
        Result shape = sdrt(args.toArray(String[]::new));
        assertThat(shape.code()).isEqualTo(2);
        assertThat(shape.err()).contains("sample").contains("[2, 4, 8, 8]");
        assertThat(tmp.resolve("o")).doesNotExist();

        Result extra = sdrt("run-onnx", unet.onnx().toString(), "--input", "bogus=" + sample, "--output-dir", tmp.toString());
        assertThat(extra.err()).contains("bogus");

        Result badSpec = sdrt("run-onnx", unet.onnx().toString(), "--input", "sample", "--output-dir", tmp.toString());
        assertThat(badSpec.code()).isEqualTo(2);
        assertThat(badSpec.err()).contains("NAME=FILE.npy");
    }

    @Test
    void runOnnxNamesAMissingModelOrInputFile() {
        Result noModel = sdrt("run-onnx", tmp.resolve("none.onnx").toString(), "--input", "x=y.npy", "--output-dir", tmp.toString());
        assertThat(noModel.code()).isNotZero();
        assertThat(noModel.err()).contains("y.npy");
        FixtureCase unet = FixtureCase.named("tiny_sd_unet");
        Result noNpy = sdrt("run-onnx", unet.onnx().toString(), "--input", "sample=" + tmp.resolve("nope.npy"),
                "--output-dir", tmp.toString());
        assertThat(noNpy.code()).isEqualTo(1);
        assertThat(noNpy.err()).contains("file not found").contains("nope.npy");
    }

    @Test
    void inspectDescribesTheModel() {
        Result r = sdrt("inspect", FixtureCase.named("tiny_sd_unet").onnx().toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("ai.onnx 17")
                .containsPattern("sample\\s+float \\[2, 4, 16, 16]")
                .containsPattern("out_sample\\s+float \\[2, 4, 16, 16]")
                .contains("attention:  12 blocks (6 self, 6 cross)")
                .contains("external data: none")
                .containsPattern("Conv\\s+47");
    }

    @Test
    void inspectRefusesAMalformedFileClearly() throws Exception {
        Path bad = tmp.resolve("bad.onnx");
        Files.write(bad, new byte[] {0x0a, (byte) 0xff, (byte) 0xff, 0x01});
        Result r = sdrt("inspect", bad.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("malformed ONNX file").contains("bad.onnx");
    }
}
