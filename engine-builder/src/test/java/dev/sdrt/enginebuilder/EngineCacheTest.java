package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.SaveOptions;
import dev.sdrt.runtime.Fixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EngineCacheTest {

    static final BuildEnvironment H100 = new BuildEnvironment("NVIDIA H100 80GB HBM3", "9.0", "10.6.0.26");
    static final BuildEnvironment A100 = new BuildEnvironment("NVIDIA A100-SXM4-80GB", "8.0", "10.6.0.26");
    static final BuildEnvironment H100_TRT_10_7 = new BuildEnvironment("NVIDIA H100 80GB HBM3", "9.0", "10.7.0.23");

    @TempDir
    Path dir;

    FakeBackend backend;
    EngineCache cache;
    Path onnx;
    Path engine;

    @BeforeEach
    void setUp() throws IOException {
        backend = new FakeBackend();
        cache = new EngineCache(H100, backend);
        onnx = dir.resolve("unet/model.onnx");
        Files.createDirectories(onnx.getParent());
        Files.copy(Fixtures.model("tiny_sd_unet").resolve("model.onnx"), onnx);
        engine = dir.resolve("engines/unet.plan");
    }

    private EngineBuildRequest.Builder request() {
        return EngineBuildRequest.builder(onnx).batch(2).size(DimRange.fixed(16)).staticShapes(true).passSpec("cleanup");
    }

    private EngineCache.Outcome build(EngineBuildRequest request) throws IOException {
        return cache.buildOrReuse(request, engine, BuildProgress.NONE);
    }

    @Test
    void firstBuildWritesEngineAndManifest() throws IOException {
        EngineCache.Outcome outcome = build(request().build());

        assertThat(outcome.reused()).isFalse();
        assertThat(engine).exists();
        assertThat(EngineManifest.pathFor(engine)).exists().hasFileName("unet.plan.json");
        EngineManifest manifest = EngineManifest.readFor(engine);
        assertThat(manifest.onnx().sha256()).isEqualTo(FileHash.sha256(onnx)).hasSize(64);
        assertThat(manifest.passSpec()).isEqualTo("cleanup");
        assertThat(manifest.precision()).isEqualTo("fp32");
        assertThat(manifest.gpuName()).isEqualTo(H100.gpuName());
        assertThat(manifest.computeCapability()).isEqualTo("9.0");
        assertThat(manifest.tensorRtVersion()).isEqualTo("10.6.0.26");
        assertThat(manifest.engineSizeBytes()).isEqualTo(Files.size(engine));
        assertThat(manifest.inputs()).extracting(TensorDescription::name)
                .containsExactly("sample", "timestep", "encoder_hidden_states");
        assertThat(manifest.profiles()).hasSize(1);
        assertThat(manifest.profiles().get(0).get("sample").opt()).containsExactly(2, 4, 16, 16);
        assertThat(manifest.buildOptions()).isEqualTo(new BuildOptions(3, 0, false, true, true, true));
        assertThat(manifest.buildSeconds()).isGreaterThanOrEqualTo(0);
    }

    @Test
    void identicalRequestReusesTheEngine() throws IOException {
        EngineCache.Outcome first = build(request().build());
        long modified = Files.getLastModifiedTime(engine).toMillis();
        EngineCache.Outcome second = build(request().build());

        assertThat(second.reused()).isTrue();
        assertThat(backend.builds).isEqualTo(1);
        assertThat(second.manifest().cacheKey()).isEqualTo(first.manifest().cacheKey());
        assertThat(Files.getLastModifiedTime(engine).toMillis()).isEqualTo(modified);
    }

    @Test
    void timingCacheFileIsNotPartOfTheKey() throws IOException {
        build(request().build());
        assertThat(build(request().timingCache(dir.resolve("timing.cache")).build()).reused()).isTrue();
    }

    @Test
    void otherPassSpecRebuilds() throws IOException {
        build(request().build());
        EngineCache.Outcome other = build(request().passSpec("fuse-qkv,fp16").build());
        assertThat(other.reused()).isFalse();
        assertThat(backend.builds).isEqualTo(2);
        assertThat(EngineManifest.readFor(engine).passSpec()).isEqualTo("fuse-qkv,fp16");
    }

    @Test
    void otherBuildOptionsRebuild() throws IOException {
        build(request().build());
        assertThat(build(request().optLevel(5).build()).reused()).isFalse();
        assertThat(build(request().optLevel(5).tf32(false).build()).reused()).isFalse();
        assertThat(build(request().optLevel(5).tf32(false).refit(true).build()).reused()).isFalse();
        assertThat(backend.builds).isEqualTo(4);
    }

    @Test
    void otherProfileRebuilds() throws IOException {
        Path dynamic = TestModels.saveDynamicUnetLike(dir.resolve("dyn/model.onnx"), false);
        EngineBuildRequest.Builder base = EngineBuildRequest.builder(dynamic).batch(new DimRange(1, 2, 4));
        build(base.build());
        assertThat(build(base.build()).reused()).isTrue();
        EngineCache.Outcome taller = build(base.height(new DimRange(32, 64, 128)).build());
        assertThat(taller.reused()).isFalse();
        assertThat(taller.manifest().profiles().get(0).get("sample").max()).containsExactly(4, 4, 128, 64);
        assertThat(build(base.staticShapes(true).build()).reused()).isFalse();
        assertThat(backend.builds).isEqualTo(3);
    }

    @Test
    void otherOnnxContentRebuilds() throws IOException {
        build(request().build());
        OnnxModel model = OnnxModel.load(onnx);
        model.metadata().put("edited", "yes");
        model.save(onnx);

        EngineCache.Outcome rebuilt = build(request().build());
        assertThat(rebuilt.reused()).isFalse();
        assertThat(rebuilt.manifest().onnx().sha256()).isEqualTo(FileHash.sha256(onnx));
    }

    @Test
    void externalDataIsHashedAndPartOfTheKey() throws IOException {
        Path model = TestModels.saveDynamicUnetLike(dir.resolve("ext/model.onnx"), true);
        Path data = OnnxModel.externalDataFiles(model).get(0);
        assertThat(data).exists();
        EngineBuildRequest request = EngineBuildRequest.builder(model).build();

        EngineManifest manifest = build(request).manifest();
        assertThat(manifest.externalData()).singleElement().satisfies(hash -> {
            assertThat(hash.file()).isEqualTo(data.getFileName().toString());
            assertThat(hash.sha256()).isEqualTo(FileHash.sha256(data));
            assertThat(hash.bytes()).isEqualTo(Files.size(data));
        });
        assertThat(build(request).reused()).isTrue();

        // Same graph file, different weights: the engine must be rebuilt.
        byte[] bytes = Files.readAllBytes(data);
        bytes[bytes.length - 1] ^= 0x40;
        Files.write(data, bytes, StandardOpenOption.TRUNCATE_EXISTING);
        Files.setLastModifiedTime(data, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 5000));
        assertThat(build(request).reused()).isFalse();
    }

    @Test
    void engineFromAnotherMachineIsRebuiltNotReused() throws IOException {
        new EngineCache(A100, backend).buildOrReuse(request().build(), engine, BuildProgress.NONE);
        EngineCache.Outcome here = build(request().build());
        assertThat(here.reused()).isFalse();
        assertThat(here.manifest().gpuName()).isEqualTo(H100.gpuName());
    }

    @Test
    void loadingAnEngineBuiltOnAnotherGpuIsRefused() throws IOException {
        new EngineCache(A100, backend).buildOrReuse(request().build(), engine, BuildProgress.NONE);

        assertThatThrownBy(() -> cache.verifyLoadable(engine))
                .isInstanceOf(EngineMismatchException.class)
                .hasMessageContaining("another GPU")
                .hasMessageContaining("NVIDIA A100-SXM4-80GB")
                .hasMessageContaining("NVIDIA H100 80GB HBM3")
                .hasMessageContaining("compute capability 8.0")
                .hasMessageContaining("compute capability 9.0")
                .hasMessageContaining("rebuild");
    }

    @Test
    void loadingAnEngineFromAnotherTensorRtIsRefused() throws IOException {
        new EngineCache(H100_TRT_10_7, backend).buildOrReuse(request().build(), engine, BuildProgress.NONE);

        assertThatThrownBy(() -> cache.verifyLoadable(engine))
                .isInstanceOf(EngineMismatchException.class)
                .hasMessageContaining("another TensorRT version")
                .hasMessageContaining("TensorRT 10.7.0.23")
                .hasMessageContaining("TensorRT 10.6.0.26")
                .satisfies(e -> assertThat(((EngineMismatchException) e).builtFor()).isEqualTo(H100_TRT_10_7));
    }

    @Test
    void matchingEngineIsLoadable() throws IOException {
        build(request().build());
        assertThat(cache.verifyLoadable(engine).gpuName()).isEqualTo(H100.gpuName());
    }

    @Test
    void missingManifestIsAClearError() throws IOException {
        build(request().build());
        Files.delete(EngineManifest.pathFor(engine));

        assertThatThrownBy(() -> cache.verifyLoadable(engine))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("no manifest")
                .hasMessageContaining("unet.plan.json")
                .hasMessageContaining("sdrt build");
        // A build request simply rebuilds.
        assertThat(build(request().build()).reused()).isFalse();
    }

    @Test
    void corruptManifestIsAClearErrorAndRebuilt() throws IOException {
        build(request().build());
        Files.writeString(EngineManifest.pathFor(engine), "{\"formatVersion\": 1, \"cacheKey\": ", StandardCharsets.UTF_8);

        assertThatThrownBy(() -> cache.verifyLoadable(engine))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("not valid JSON")
                .hasMessageContaining("unet.plan.json");
        assertThat(build(request().build()).reused()).isFalse();
        assertThat(cache.verifyLoadable(engine)).isNotNull();
    }

    @Test
    void manifestOfAnotherEngineFileIsRejected() throws IOException {
        build(request().build());
        Files.writeString(engine, "a different plan of another size", StandardOpenOption.APPEND);

        assertThatThrownBy(() -> cache.verifyLoadable(engine))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("bytes but its manifest says");
        assertThat(build(request().build()).reused()).isFalse();
    }

    @Test
    void sameModelElsewhereHasTheSameKey() throws IOException {
        EngineManifest here = build(request().build()).manifest();
        Path copy = dir.resolve("elsewhere/renamed.onnx");
        Files.createDirectories(copy.getParent());
        Files.copy(onnx, copy, StandardCopyOption.REPLACE_EXISTING);
        EngineManifest there = new EngineCache(H100, backend).buildOrReuse(request().onnx(copy).build(),
                dir.resolve("engines/other.plan"), BuildProgress.NONE).manifest();
        assertThat(there.cacheKey()).isEqualTo(here.cacheKey());
    }

    @Test
    void precisionComesFromTheGraphBeforeTheHint() throws IOException {
        Path half = dir.resolve("half/model.onnx");
        TestModels.dynamicUnetLike(dev.sdrt.graphs.ir.DataType.FLOAT16)
                .save(half, SaveOptions.defaults().withExternalData(SaveOptions.ExternalData.NEVER));
        EngineManifest manifest = build(EngineBuildRequest.builder(half).precisionHint("int8").build()).manifest();
        assertThat(manifest.precision()).isEqualTo("fp16");
    }

    @Test
    void aStoreSharesOneEngineAmongCopiesOfAModelAndKeepsOtherRequestsApart() throws IOException {
        Path store = dir.resolve("store");
        EngineCache.Outcome first = cache.buildOrReuseIn(store, "vae_decoder", request().build(), BuildProgress.NONE);
        assertThat(first.reused()).isFalse();
        assertThat(first.engine().getParent()).isEqualTo(store);
        assertThat(first.engine().getFileName().toString()).matches("vae_decoder-[0-9a-f]{16}\\.plan");
        assertThat(first.manifest().cacheKey()).startsWith(first.engine().getFileName().toString().substring(12, 28));

        Path copy = dir.resolve("variant/model.onnx");
        Files.createDirectories(copy.getParent());
        Files.copy(onnx, copy);
        EngineCache.Outcome again = cache.buildOrReuseIn(store, "vae_decoder", request().onnx(copy).build(), BuildProgress.NONE);
        assertThat(again.reused()).as("the same content elsewhere").isTrue();
        assertThat(again.engine()).isEqualTo(first.engine());

        EngineCache.Outcome other = cache.buildOrReuseIn(store, "vae_decoder", request().optLevel(2).build(), BuildProgress.NONE);
        assertThat(other.reused()).isFalse();
        assertThat(other.engine()).isNotEqualTo(first.engine());
        assertThat(first.engine()).as("the other request's engine stays").exists();
        assertThat(backend.builds).isEqualTo(2);

        assertThatThrownBy(() -> cache.buildOrReuseIn(store, "../escape", request().build(), BuildProgress.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'../escape'");
    }
}
