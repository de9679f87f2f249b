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

class OptimizeCliTest {
    @TempDir
    Path tmp;

    @Test
    void exactPassesKeepTheFixtureOutputsAndReportWhatChanged() throws Exception {
        FixtureCase fixture = FixtureCase.named("tiny_sd_unet");
        Path out = tmp.resolve("opt.onnx");
        CliTest.Result r = sdrt("optimize", fixture.onnx().toString(), "--passes", "cleanup,fuse-qkv", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("cleanup").contains("fuse-qkv").contains("wrote " + out);

        List<String> args = new ArrayList<>(List.of("run-onnx", out.toString()));
        args.addAll(inputArgs(fixture));
        args.addAll(List.of("--output-dir", tmp.resolve("o").toString()));
        assertThat(sdrt(args.toArray(String[]::new)).code()).isZero();
        fixture.assertOutputsMatch(readOutputs(tmp.resolve("o"), fixture), FixtureCase.FP32_TOLERANCE);
    }

    @Test
    void badSpecsAreExplained() {
        FixtureCase fixture = FixtureCase.named("tiny_sd_unet");
        CliTest.Result unknown = sdrt("optimize", fixture.onnx().toString(), "--passes", "cleanup,turbo", "--out",
                tmp.resolve("x.onnx").toString());
        assertThat(unknown.code()).isEqualTo(2);
        assertThat(unknown.err()).contains("turbo").contains("fuse-qkv");
        CliTest.Result scales = sdrt("optimize", fixture.onnx().toString(), "--passes", "cleanup", "--scales", "s.json", "--out",
                tmp.resolve("x.onnx").toString());
        assertThat(scales.err()).contains("only used by the qdq pass");
        assertThat(tmp.resolve("x.onnx")).doesNotExist();
    }
}
