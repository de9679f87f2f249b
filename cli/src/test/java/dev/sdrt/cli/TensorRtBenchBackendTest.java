package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.cli.bench.BenchSettings.Size;
import dev.sdrt.enginebuilder.BuildEnvironment;
import dev.sdrt.enginebuilder.BuildProgress;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine side of {@code sdrt bench --backend tensorrt}, with a stand-in for the TensorRT builder:
 * which engines a cell gets, and that the store shares what variants have in common. The device loop
 * on those engines is the GPU suite's.
 */
class TensorRtBenchBackendTest {
    @TempDir
    Path tmp;

    @Test
    void eachCellGetsItsEnginesAndVariantsShareWhatTheyHaveInCommon() throws Exception {
        Path model = tmp.resolve("tiny");
        assertThat(sdrt("export-pipeline", "--arch", "tiny", "--random-weights", "--out", model.toString()).code()).isZero();
        // a variant folder as bench makes one: the baseline's files hard-linked, the denoiser rewritten
        Path variant = Files.createDirectories(tmp.resolve("variant"));
        try (Stream<Path> files = Files.list(model)) {
            for (Path f : files.toList()) {
                if (Files.isRegularFile(f)) {
                    Files.createLink(variant.resolve(f.getFileName()), f);
                }
            }
        }
        PipelineSpec spec = PipelineSpec.read(model);
        Path unet = variant.resolve(spec.denoiser());
        assertThat(sdrt("optimize", model.resolve(spec.denoiser()).toString(), "--passes", "fuse-qkv", "--out",
                tmp.resolve("fused.onnx").toString()).code()).isZero();
        Files.delete(unet);
        Files.move(tmp.resolve("fused.onnx"), unet);

        List<Path> built = new ArrayList<>();
        EngineCache.Backend fake = (request, onnx, profile, plan, progress) -> {
            built.add(plan);
            Files.writeString(plan, "engine of " + request.onnx().getFileName() + " for " + profile.inputs());
            return new EngineCache.BuiltEngine(List.of(), List.of());
        };
        StringWriter log = new StringWriter();
        Path store = tmp.resolve("engines");
        TensorRtBenchBackend backend = new TensorRtBenchBackend(store, 1, 3, true, new PrintWriter(log, true),
                () -> new EngineCache(new BuildEnvironment("NVIDIA H200", "9.0", "10.6.0.26"), fake), BuildProgress.NONE);

        Map<Path, Path> baseline = backend.enginesFor(model, spec, new Size(32, 32), 1);
        assertThat(baseline).hasSize(4).containsOnlyKeys(Stream.of(spec.denoiser(), spec.vaeDecoder, spec.schedulerStep,
                spec.schedulerStepGuided).map(f -> model.resolve(f).toAbsolutePath().normalize()).toArray(Path[]::new));
        assertThat(built).hasSize(4);
        assertThat(baseline.get(model.resolve(spec.denoiser()).toAbsolutePath().normalize()).getFileName().toString())
                .matches("denoiser@32x32-b1-[0-9a-f]{16}\\.plan");
        assertThat(Files.readString(baseline.get(model.resolve(spec.denoiser()).toAbsolutePath().normalize())))
                .as("static: the denoiser runs the guided batch of 2").contains("[2, 4, 16, 16]");

        Map<Path, Path> fused = backend.enginesFor(variant, spec, new Size(32, 32), 1);
        assertThat(built).as("only the rewritten denoiser is new").hasSize(5);
        assertThat(fused.get(variant.resolve(spec.vaeDecoder).toAbsolutePath().normalize()))
                .isEqualTo(baseline.get(model.resolve(spec.vaeDecoder).toAbsolutePath().normalize()));
        assertThat(fused.get(unet.toAbsolutePath().normalize()))
                .isNotEqualTo(baseline.get(model.resolve(spec.denoiser()).toAbsolutePath().normalize()));

        backend.enginesFor(variant, spec, new Size(64, 32), 2);
        assertThat(built).as("another cell: engines of its own").hasSize(9);
        backend.enginesFor(model, spec, new Size(32, 32), 1);
        assertThat(built).as("a second run builds nothing").hasSize(9);
        assertThat(log.toString()).contains("engine denoiser@32x32-b1-").contains("built in");
    }
}
