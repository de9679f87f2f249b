package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EngineManifestTest {

    @TempDir
    Path dir;

    static EngineManifest sample() {
        Map<String, InputShapes> profile = new LinkedHashMap<>();
        profile.put("sample", new InputShapes(new long[] {1, 4, 32, 32}, new long[] {2, 4, 64, 64}, new long[] {4, 4, 128, 128}));
        profile.put("timestep", new InputShapes(new long[] {1}, new long[] {2}, new long[] {4}));
        return new EngineManifest(EngineManifest.FORMAT_VERSION, "0.1.0", "2026-11-23T10:00:00Z", "ab".repeat(32),
                "unet.plan", 1_740_000_000L, "/models/unet/model.onnx",
                new FileHash("model.onnx", "cd".repeat(32), 1234), List.of(new FileHash("model.onnx.data", "ef".repeat(32), 3_400_000_000L)),
                "fuse-qkv,fp16", "fp16", List.of(profile),
                List.of(new TensorDescription("sample", "float16", new long[] {-1, 4, -1, -1}),
                        new TensorDescription("timestep", "float16", new long[] {-1})),
                List.of(new TensorDescription("out_sample", "float16", new long[] {-1, 4, -1, -1})),
                "10.6.0.26", "NVIDIA H100 80GB HBM3", "9.0", new BuildOptions(3, 8L << 30, false, true, false, true), 272.4);
    }

    @Test
    void jsonRoundTripKeepsEveryField() {
        EngineManifest original = sample();
        EngineManifest back = EngineManifest.fromJson(original.toJson(), "test");

        assertThat(back.toJson()).isEqualTo(original.toJson());
        assertThat(back.profiles().get(0).keySet()).containsExactly("sample", "timestep");
        assertThat(back.profiles().get(0).get("sample")).isEqualTo(original.profiles().get(0).get("sample"));
        assertThat(back.inputs()).isEqualTo(original.inputs());
        assertThat(back.externalData()).isEqualTo(original.externalData());
        assertThat(back.buildOptions()).isEqualTo(original.buildOptions());
        assertThat(back.environment()).isEqualTo(new BuildEnvironment("NVIDIA H100 80GB HBM3", "9.0", "10.6.0.26"));
        assertThat(back.buildSeconds()).isEqualTo(272.4);
    }

    @Test
    void jsonIsReadable() {
        String json = sample().toJson();
        assertThat(json).contains("\"gpuName\": \"NVIDIA H100 80GB HBM3\"", "\"passSpec\": \"fuse-qkv,fp16\"",
                "\"tensorRtVersion\": \"10.6.0.26\"", "\"engineSizeBytes\": 1740000000");
    }

    @Test
    void writeAndReadBesideTheEngine() throws IOException {
        Path engine = dir.resolve("unet.plan");
        Files.writeString(engine, "plan");
        sample().write(EngineManifest.pathFor(engine));

        assertThat(dir.resolve("unet.plan.json")).exists();
        assertThat(EngineManifest.readFor(engine).toJson()).isEqualTo(sample().toJson());
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("unet.plan", "unet.plan.json");
        }
    }

    @Test
    void corruptJsonIsAClearError() {
        assertThatThrownBy(() -> EngineManifest.fromJson("{ \"formatVersion\": 1, ", "x.plan.json"))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("x.plan.json is not valid JSON")
                .hasMessageContaining("build again");
        assertThatThrownBy(() -> EngineManifest.fromJson("[1, 2]", "x.plan.json"))
                .isInstanceOf(ManifestException.class).hasMessageContaining("not valid JSON");
        assertThatThrownBy(() -> EngineManifest.fromJson("", "x.plan.json"))
                .isInstanceOf(ManifestException.class).hasMessageContaining("empty");
    }

    @Test
    void incompleteOrFutureManifestsAreRejected() {
        assertThatThrownBy(() -> EngineManifest.fromJson("{\"formatVersion\": 1, \"cacheKey\": \"k\"}", "m.json"))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("incomplete")
                .hasMessageContaining("gpuName")
                .hasMessageContaining("tensorRtVersion");
        String future = sample().toJson().replace("\"formatVersion\": 1", "\"formatVersion\": 7");
        assertThatThrownBy(() -> EngineManifest.fromJson(future, "m.json"))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("format version 7");
    }

    @Test
    void missingManifestNamesTheExpectedFile() {
        Path engine = dir.resolve("vae.plan");
        assertThatThrownBy(() -> EngineManifest.readFor(engine))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("vae.plan.json")
                .hasMessageContaining("sdrt build");
    }
}
