package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.exportRandomPipeline;
import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.InputShapes;
import dev.sdrt.enginebuilder.OnnxSummary;
import dev.sdrt.enginebuilder.ProfileDeriver;
import dev.sdrt.enginebuilder.ShapeProfile;
import dev.sdrt.enginebuilder.pipeline.PipelineEngines;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.trt.TensorRt;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code sdrt build-pipeline} without a GPU: which engines it would build and with which profiles
 * (derived from the exported graphs exactly as the engine builder derives them), its option checks,
 * and the refusal that {@code sdrt build} gives on a machine without TensorRT.
 */
class BuildPipelineCommandTest {
    @TempDir
    static Path tmp;
    static Path sd;
    static Path sdxl;
    static Path sd3;

    @BeforeAll
    static void exportPipelines() {
        sd = exportRandomPipeline(tmp, "tiny", "--deepcache-branch", "0");
        sdxl = exportRandomPipeline(tmp, "tiny-sdxl");
        sd3 = exportRandomPipeline(tmp, "tiny-sd3");
    }

    /** Every target's profile, as EngineCache would derive it before calling TensorRT. */
    private static Map<String, ShapeProfile> profiles(Path folder, String... args) throws IOException {
        BuildPipelineCommand command = new BuildPipelineCommand();
        new picocli.CommandLine(command).parseArgs(Stream.concat(Stream.of("--model", folder.toString()), Stream.of(args))
                .toArray(String[]::new));
        PipelineSpec spec = PipelineSpec.read(folder);
        List<PipelineEngines.Target> targets = PipelineEngines.targets(folder, spec, command.shapes(spec),
                command.optLevel, folder.resolve("timing.cache"), !command.noTf32, command.only);
        Map<String, ShapeProfile> profiles = new LinkedHashMap<>();
        for (PipelineEngines.Target t : targets) {
            assertThat(t.onnx()).exists();
            assertThat(t.plan().getFileName().toString()).isEqualTo(t.onnx().getFileName().toString().replace(".onnx", ".plan"));
            profiles.put(t.component(), ProfileDeriver.derive(OnnxSummary.read(t.onnx()).inputs(), t.request()));
        }
        return profiles;
    }

    @Test
    void staticProfilesFollowTheLatentsWithTheGuidedBatchOnTheDenoiser() throws Exception {
        Map<String, ShapeProfile> p = profiles(sd, "--size", "32x48");
        assertThat(p.keySet()).containsExactly("denoiser", "vae_decoder", "scheduler_step", "scheduler_step_guided",
                "deepcache_full", "deepcache_shallow");
        p.values().forEach(profile -> assertThat(profile.isStatic()).isTrue());
        // tiny: vae_scale_factor 2, 4 latent channels; 32x48 pixels -> 24 x 16 latents (height x width)
        assertThat(p.get("denoiser").input("sample").opt()).containsExactly(2, 4, 24, 16);
        assertThat(p.get("denoiser").input("timestep").opt()).containsExactly(2);
        assertThat(p.get("denoiser").input("encoder_hidden_states").opt()[0]).isEqualTo(2);
        assertThat(p.get("denoiser").input("encoder_hidden_states").opt()[1]).isEqualTo(77);
        assertThat(p.get("vae_decoder").input("latent_sample").opt()).containsExactly(1, 4, 24, 16);
        assertThat(p.get("scheduler_step").input("model_output").opt()).containsExactly(1, 4, 24, 16);
        assertThat(p.get("scheduler_step_guided").input("sample").opt()).containsExactly(1, 4, 24, 16);
        assertThat(p.get("scheduler_step_guided").input("model_output").opt()).containsExactly(2, 4, 24, 16);
        assertThat(p.get("scheduler_step_guided").input("coefficients").opt()).containsExactly(9);
        assertThat(p.get("deepcache_shallow").input("deepcache_feature").opt()[0]).isEqualTo(2);
        assertThat(p.get("deepcache_shallow").input("deepcache_feature").opt()[2]).isEqualTo(24);
        assertThat(p.get("deepcache_full").input("sample").opt()).containsExactly(2, 4, 24, 16);
    }

    @Test
    void dynamicProfilesServeUnguidedAndGuidedBatchesAndEverySize() throws Exception {
        Map<String, ShapeProfile> p = profiles(sd, "--dynamic", "--batch", "1..2", "--sizes", "32x32,16x48,64x16");
        InputShapes sample = p.get("denoiser").input("sample");
        assertThat(sample.min()).containsExactly(1, 4, 8, 8);
        assertThat(sample.opt()).containsExactly(4, 4, 16, 16);
        assertThat(sample.max()).containsExactly(4, 4, 24, 32);
        InputShapes guided = p.get("scheduler_step_guided").input("model_output");
        assertThat(guided.min()[0]).isEqualTo(2);
        assertThat(guided.max()[0]).isEqualTo(4);
        assertThat(p.get("vae_decoder").input("latent_sample").max()).containsExactly(2, 4, 24, 32);
        assertThat(profiles(sd, "--only", "vae_decoder,scheduler_step").keySet()).containsExactly("vae_decoder", "scheduler_step");
    }

    @Test
    void sdxlAndSd3PipelinesHaveProfilesForEveryEngine() throws Exception {
        Map<String, ShapeProfile> xl = profiles(sdxl);
        assertThat(xl.keySet()).containsExactly("denoiser", "vae_decoder", "scheduler_step", "scheduler_step_guided");
        assertThat(xl.get("denoiser").input("time_ids").opt()[0]).isEqualTo(2);
        Map<String, ShapeProfile> three = profiles(sd3, "--dynamic");
        PipelineSpec spec = PipelineSpec.read(sd3);
        InputShapes context = three.get("denoiser").input("encoder_hidden_states");
        assertThat(context.opt()[1]).as("CLIP tokens, then the zero T5 tokens")
                .isEqualTo(spec.maxTextLength + spec.t5SequenceLength);
    }

    @Test
    void optionsAreCheckedBeforeAnythingIsBuilt() {
        CliTest.Result range = sdrt("build-pipeline", "--model", sd.toString(), "--batch", "1..2");
        assertThat(range.code()).isEqualTo(2);
        assertThat(range.err()).contains("add --dynamic");
        CliTest.Result size = sdrt("build-pipeline", "--model", sd.toString(), "--size", "33x32");
        assertThat(size.code()).isEqualTo(2);
        assertThat(size.err()).contains("multiple of the VAE scale factor 2");
        CliTest.Result badSize = sdrt("build-pipeline", "--model", sd.toString(), "--size", "big");
        assertThat(badSize.err()).contains("--size must look like 512x512");
        CliTest.Result only = sdrt("build-pipeline", "--model", sd.toString(), "--only", "unet");
        assertThat(only.err()).contains("unknown component 'unet'").contains("denoiser");
        CliTest.Result noCache = sdrt("build-pipeline", "--model", sdxl.toString(), "--only", "deepcache_full");
        assertThat(noCache.err()).contains("has no DeepCache graphs");
        CliTest.Result notAFolder = sdrt("build-pipeline", "--model", tmp.resolve("nothing").toString());
        assertThat(notAFolder.code()).isNotZero();
        assertThat(notAFolder.err()).contains("sdrt-pipeline.json");
        CliTest.Result zeroSize = sdrt("build-pipeline", "--model", sd.toString(), "--size", "0x8");
        assertThat(zeroSize.code()).isEqualTo(2);
        assertThat(zeroSize.err()).contains("--size must look like 512x512");
    }

    @Test
    void withoutAGpuItSaysWhyAsSdrtBuildDoesAndWritesNothing() throws Exception {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT; the GPU suite builds pipelines");
        CliTest.Result r = sdrt("build-pipeline", "--model", sd.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("cannot build TensorRT engines on this machine");
        try (var files = Files.list(sd)) {
            assertThat(files.map(f -> f.getFileName().toString())).noneMatch(n -> n.endsWith(".plan") || n.endsWith(".plan.json"));
        }
        assertThat(DimRange.parse("2").isFixed()).isTrue();
    }
}
