package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.trt.TensorRt;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The engine commands on a machine without a GPU: clear refusals, nothing written. */
class EngineCliTest {
    @TempDir
    Path tmp;

    @Test
    void buildWithoutAGpuSaysWhyAndWritesNothing() {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT; the GPU suite covers builds");
        Path plan = tmp.resolve("unet.plan");
        CliTest.Result r = sdrt("build", FixtureCase.named("tiny_sd_unet").onnx().toString(), "--out", plan.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("cannot build TensorRT engines on this machine");
        assertThat(plan).doesNotExist();
        assertThat(tmp.resolve("unet.plan.json")).doesNotExist();
    }

    @Test
    void engineInfoRefusesAnEngineWithoutManifest() throws Exception {
        Path plan = tmp.resolve("foreign.plan");
        java.nio.file.Files.write(plan, new byte[] {1, 2, 3});
        CliTest.Result r = sdrt("engine-info", plan.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("no manifest").contains("foreign.plan.json");
    }
}
