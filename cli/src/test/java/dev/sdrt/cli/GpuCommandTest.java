package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdrt.runtime.trt.TensorRt;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code sdrt gpu} on a machine without a GPU: what gpu-run.sh and gpu-session.sh rely on (the summary line, exit
 * code 2 without a GPU or on bad usage, nothing built). The checks themselves are the GPU suite's.
 */
class GpuCommandTest {
    @TempDir
    Path tmp;

    @Test
    void listsItsSubcommands() {
        CliTest.Result r = sdrt("gpu", "--help");
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("selftest").contains("loopcheck").contains("bench");
        CliTest.Result bench = sdrt("gpu", "bench", "--help");
        assertThat(bench.out()).contains("build").contains("latency").contains("all").contains("compare");
    }

    @Test
    void checksWithoutAGpuCountOneFailureAndExit2() {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT: the checks would run");
        for (String check : new String[] {"selftest", "loopcheck"}) {
            CliTest.Result r = sdrt("gpu", check, "--work", tmp.resolve(check).toString());
            assertThat(r.code()).as(check).isEqualTo(2);
            assertThat(r.out()).as(check).contains("no usable GPU/TensorRT").endsWith("0 passed, 1 failed\n");
        }
    }

    @Test
    void benchWithoutAGpuSaysWhyAndBuildsNothing() {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT: the bench would build");
        Path plan = tmp.resolve("unet.plan");
        CliTest.Result r = sdrt("gpu", "bench", "all", "--onnx", tmp.resolve("unet.onnx").toString(),
                "--out", plan.toString(), "--batch", "2", "--static", "--runs", "100", "--warmup", "20");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("GpuBench needs a GPU and TensorRT");
        assertThat(plan).doesNotExist();
    }

    @Test
    void benchNeedsItsRequiredOptions() {
        CliTest.Result latency = sdrt("gpu", "bench", "latency", "--runs", "100");
        assertThat(latency.code()).isEqualTo(2);
        assertThat(latency.err()).contains("--engine");
        CliTest.Result compare = sdrt("gpu", "bench", "compare", "--engine", "a.plan");
        assertThat(compare.code()).isEqualTo(2);
        assertThat(compare.err()).contains("--reference");
        assertThat(sdrt("gpu", "bench", "frobnicate").code()).isEqualTo(2);
    }
}
