package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EngineInfoTest {

    @TempDir
    Path dir;

    private Path buildFake(BuildEnvironment environment) throws IOException {
        Path onnx = dir.resolve("model.onnx");
        Files.copy(Fixtures.model("tiny_sd_unet").resolve("model.onnx"), onnx);
        Path engine = dir.resolve("unet.plan");
        new EngineCache(environment, new FakeBackend()).buildOrReuse(
                EngineBuildRequest.builder(onnx).batch(2).size(DimRange.fixed(16)).passSpec("cleanup").build(),
                engine, BuildProgress.NONE);
        return engine;
    }

    @Test
    void withoutAGpuShowsTheManifestOnly() throws IOException {
        Path engine = buildFake(EngineCacheTest.H100);
        String info = EngineInfo.describe(engine, null);

        assertThat(info).contains("unet.plan", "unet.plan.json", "cleanup", "fp32", "10.6.0.26",
                "NVIDIA H100 80GB HBM3 (compute capability 9.0)", "opt level 3", "input ", "sample: float32 [2, 4, 16, 16]",
                "output ", "out_sample", "profile 0", "manifest only");
    }

    @Test
    void onAnotherGpuSaysWhyItWillNotLoad() throws IOException {
        Path engine = buildFake(EngineCacheTest.A100);
        String info = EngineInfo.describe(engine, EngineCacheTest.H100);
        assertThat(info).contains("not loadable here", "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3");
    }

    @Test
    void formatsSizes() {
        assertThat(EngineInfo.formatBytes(900)).isEqualTo("900 bytes");
        assertThat(EngineInfo.formatBytes(1_740_000_000L)).isEqualTo("1.74 GB");
        assertThat(EngineInfo.formatBytes(512_300_000L)).isEqualTo("512.3 MB");
    }
}
