package dev.sdrt.cli;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.exporter.Component;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.Exporter;
import dev.sdrt.exporter.SchedulerStepGraph;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.pipeline.CharacterTokenizerFiles;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.passes.DeepCacheSplitter;
import dev.sdrt.runtime.pipeline.PipelineFamily;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * Writes a pipeline folder that {@code sdrt generate} runs: one ONNX file per component (text
 * encoders, UNet or transformer, VAE decoder and encoder), the tokenizers, the scheduler config and
 * {@code sdrt-pipeline.json}.
 */
final class PipelineFolder {

    private PipelineFolder() {
    }

    /** The components a family's folder holds, in export order. */
    static List<Component> components(PipelineFamily family) {
        List<Component> c = new ArrayList<>(List.of(Component.TEXT_ENCODER));
        if (family != PipelineFamily.SD) {
            c.add(Component.TEXT_ENCODER_2);
        }
        c.add(denoiser(family));
        c.add(Component.VAE_DECODER);
        c.add(Component.VAE_ENCODER);
        return c;
    }

    /** The family of a built-in architecture, from the components it ships. */
    static PipelineFamily familyOf(String arch) {
        List<Component> shipped = Exporter.componentsOf(arch);
        if (shipped.contains(Component.TRANSFORMER)) {
            return PipelineFamily.SD3;
        }
        return shipped.contains(Component.TEXT_ENCODER_2) ? PipelineFamily.SDXL : PipelineFamily.SD;
    }

    /**
     * From a diffusers pipeline folder (model_index.json with text_encoder/, unet/ or transformer/,
     * vae/, tokenizer/, scheduler/, and text_encoder_2/ + tokenizer_2/ for SDXL and SD3).
     */
    static void fromDiffusers(Path source, Path out, ExportOptions options, Integer deepCacheBranch, PrintWriter log,
            PrintWriter err) throws IOException {
        Path index = source.resolve("model_index.json");
        if (!Files.isRegularFile(index)) {
            throw new IllegalArgumentException(source + " is not a diffusers pipeline folder (no model_index.json)");
        }
        JsonObject modelIndex;
        try {
            modelIndex = JsonParser.parseString(Files.readString(index, StandardCharsets.UTF_8)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(index + " is not valid JSON: " + e.getMessage(), e);
        }
        PipelineFamily family = familyOfPipelineClass(index, modelIndex);
        checkDeepCache(family, deepCacheBranch);
        Files.createDirectories(out);
        for (Component c : components(family)) {
            Path folder = source.resolve(c.folder());
            if (!Files.isDirectory(folder)) {
                throw new IllegalArgumentException(source + " has no " + c.folder() + "/ folder, which a " + family.id()
                        + " pipeline needs");
            }
            export(c, () -> Exporter.fromCheckpoint(folder, c, optionsFor(family, c, options)), out, log, err);
        }
        if (family == PipelineFamily.SD3 && Files.isDirectory(source.resolve("text_encoder_3"))) {
            log.println("  note: text_encoder_3 (T5) is not exported; the transformer gets zero T5 tokens, as diffusers does"
                    + " without it (prompt following is weaker than with T5)");
        }
        copyTree(source.resolve("tokenizer"), out.resolve("tokenizer"));
        if (family != PipelineFamily.SD) {
            copyTree(source.resolve("tokenizer_2"), out.resolve("tokenizer_2"));
        }
        Files.createDirectories(out.resolve("scheduler"));
        Files.copy(source.resolve("scheduler/scheduler_config.json"), out.resolve("scheduler/scheduler_config.json"),
                StandardCopyOption.REPLACE_EXISTING);
        JsonElement zeros = modelIndex.get("force_zeros_for_empty_prompt");
        boolean forceZeros = family == PipelineFamily.SDXL && (zeros == null || zeros.getAsBoolean());
        PipelineSpec spec = specOf(family, DiffusersConfig.load(source.resolve(denoiser(family).folder())),
                DiffusersConfig.load(source.resolve("vae")), source.getFileName().toString(), forceZeros);
        writeSpec(spec, out, deepCacheBranch, log);
    }

    private static PipelineFamily familyOfPipelineClass(Path index, JsonObject modelIndex) {
        JsonElement cls = modelIndex.get("_class_name");
        String name = cls == null || cls.isJsonNull() ? "" : cls.getAsString();
        if (name.startsWith("StableDiffusion3")) {
            return PipelineFamily.SD3;
        }
        if (name.startsWith("StableDiffusionXL")) {
            return PipelineFamily.SDXL;
        }
        if (name.startsWith("StableDiffusion")) {
            return PipelineFamily.SD;
        }
        throw new IllegalArgumentException(index + ": pipeline class '" + name + "' is not supported (sdrt runs"
                + " StableDiffusion*, StableDiffusionXL* and StableDiffusion3* pipelines)");
    }

    /**
     * A built-in architecture with random weights. Its tokenizers are character level (every byte is
     * a token), since no real vocabulary ships with sdrt; prompts still encode deterministically.
     */
    static void random(String arch, long seed, Path out, ExportOptions options, Integer deepCacheBranch, PrintWriter log,
            PrintWriter err) throws IOException {
        PipelineFamily family = familyOf(arch);
        checkDeepCache(family, deepCacheBranch);
        Files.createDirectories(out);
        for (Component c : components(family)) {
            export(c, () -> Exporter.random(arch, c, seed, optionsFor(family, c, options)), out, log, err);
        }
        CharacterTokenizerFiles.write(out.resolve("tokenizer"));
        if (family != PipelineFamily.SD) {
            CharacterTokenizerFiles.write(out.resolve("tokenizer_2"));
        }
        Files.createDirectories(out.resolve("scheduler"));
        Files.writeString(out.resolve("scheduler/scheduler_config.json"),
                family == PipelineFamily.SD3 ? FLOW_MATCH_SCHEDULER : EULER_SCHEDULER, StandardCharsets.UTF_8);
        writeSpec(builtInSpec(arch), out, deepCacheBranch, log);
    }

    /** The spec a built-in architecture's folder gets (its sizes and attention, known before exporting it). */
    static PipelineSpec builtInSpec(String arch) {
        PipelineFamily family = familyOf(arch);
        return specOf(family, Exporter.builtInConfig(arch, denoiser(family)), Exporter.builtInConfig(arch, Component.VAE_DECODER),
                arch, family == PipelineFamily.SDXL);
    }

    private static Component denoiser(PipelineFamily family) {
        return family.hasUnet() ? Component.UNET : Component.TRANSFORMER;
    }

    /** The scheduler configs of the SD 1.5/SDXL and SD3 checkpoints. */
    private static final String EULER_SCHEDULER = """
            {
              "_class_name": "EulerDiscreteScheduler",
              "num_train_timesteps": 1000,
              "beta_start": 0.00085,
              "beta_end": 0.012,
              "beta_schedule": "scaled_linear",
              "prediction_type": "epsilon",
              "timestep_spacing": "leading",
              "steps_offset": 1
            }
            """;
    private static final String FLOW_MATCH_SCHEDULER = """
            {
              "_class_name": "FlowMatchEulerDiscreteScheduler",
              "num_train_timesteps": 1000,
              "shift": 3.0
            }
            """;

    /** SDXL's first text encoder is a plain CLIPTextModel, but the pipeline reads its penultimate state too. */
    private static ExportOptions optionsFor(PipelineFamily family, Component c, ExportOptions options) {
        return family != PipelineFamily.SD && c == Component.TEXT_ENCODER ? options.withPenultimateHiddenState(true) : options;
    }

    private static void checkDeepCache(PipelineFamily family, Integer deepCacheBranch) {
        if (deepCacheBranch != null && !family.hasUnet()) {
            throw new IllegalArgumentException("--deepcache-branch needs a UNet; " + family.id() + " pipelines have a transformer");
        }
    }

    /** Builds one component's graph. */
    private interface ComponentExport {
        Exporter.Result build() throws IOException;
    }

    /**
     * Builds and saves one component (the weights' progress on {@code err}), then says on {@code log}
     * what it is, how large and how long it took.
     */
    private static void export(Component c, ComponentExport export, Path out, PrintWriter log, PrintWriter err)
            throws IOException {
        long start = System.nanoTime();
        Exporter.Result r = export.build();
        Path file = out.resolve(fileName(c));
        ModelSaving.saveShowingProgress(r.model(), file, err);
        log.printf(Locale.ROOT, "  %-14s %-28s %,14d parameters -> %s (%s) in %.1f s%n", c, r.modelClass(), r.parameterCount(),
                file.getFileName(), ByteSizes.human(Progress.withExternalData(file)), (System.nanoTime() - start) / 1e9);
        log.flush();
    }

    private static String fileName(Component c) {
        return c.cliName().replace('-', '_') + ".onnx";
    }

    /** The spec of a folder with every component of {@link #components}, from the denoiser's and the VAE's configs. */
    private static PipelineSpec specOf(PipelineFamily family, DiffusersConfig denoiser, DiffusersConfig vae, String arch,
            boolean forceZeros) {
        PipelineSpec spec = new PipelineSpec();
        spec.family = family.id();
        spec.arch = arch;
        spec.textEncoder = fileName(Component.TEXT_ENCODER);
        if (family != PipelineFamily.SD) {
            spec.textEncoder2 = fileName(Component.TEXT_ENCODER_2);
            spec.tokenizer2 = "tokenizer_2";
        }
        if (family == PipelineFamily.SD3) {
            spec.unet = null;
            spec.transformer = fileName(Component.TRANSFORMER);
        } else {
            spec.unet = fileName(Component.UNET);
        }
        spec.vaeDecoder = fileName(Component.VAE_DECODER);
        spec.vaeEncoder = fileName(Component.VAE_ENCODER);
        // The scheduler update as graphs, for denoising loops that run on a device without the host.
        spec.schedulerStep = "scheduler_step.onnx";
        spec.schedulerStepGuided = "scheduler_step_guided.onnx";
        spec.forceZerosForEmptyPrompt = forceZeros;
        spec.latentChannels = vae.getInt("latent_channels", 4);
        int upBlocks = vae.requireStringList("up_block_types").size();
        spec.vaeScaleFactor = 1 << (upBlocks - 1);
        spec.vaeScalingFactor = vae.getDouble("scaling_factor", 0.18215);
        spec.vaeShiftFactor = vae.getDouble("shift_factor", 0.0);
        int sample = vae.getInt("sample_size", 512);
        spec.defaultHeight = sample;
        spec.defaultWidth = sample;
        recordGeometry(spec, family, denoiser, vae);
        return spec;
    }

    /**
     * What the configs say about sizes: the latent multiple and limit the denoiser needs, and the
     * attention layers whose scores grow with the image (the pipeline refuses sizes whose scores
     * cannot fit in memory). The UNet's rules are the exporter's: a level attends when its down or up
     * block is a cross-attention block, and the mid block attends at the deepest level.
     */
    private static void recordGeometry(PipelineSpec spec, PipelineFamily family, DiffusersConfig denoiser, DiffusersConfig vae) {
        List<PipelineSpec.Attention> attention = new ArrayList<>();
        if (family.hasUnet()) {
            List<String> down = denoiser.requireStringList("down_block_types");
            List<String> up = denoiser.requireStringList("up_block_types");
            int levels = down.size();
            // every down block but the last halves the latent
            spec.latentSizeMultiple = 1 << (levels - 1);
            // diffusers' naming slip, read as the exporter reads it: attention_head_dim holds the heads
            // unless num_attention_heads is given
            List<Integer> heads = denoiser.getIntList("num_attention_heads", levels)
                    .orElseGet(() -> denoiser.getIntList("attention_head_dim", levels).orElse(Collections.nCopies(levels, 8)));
            for (int level = 0; level < levels; level++) {
                if (down.get(level).startsWith("CrossAttn") || up.get(levels - 1 - level).startsWith("CrossAttn")
                        || level == levels - 1) {
                    attention.add(new PipelineSpec.Attention("denoiser", heads.get(level), 1 << level, 0));
                }
            }
        } else {
            int patch = denoiser.getInt("patch_size", 2);
            spec.latentSizeMultiple = patch;
            spec.maxLatentSize = patch * denoiser.getInt("pos_embed_max_size", 96);
            // joint attention: the text tokens join the image's
            attention.add(new PipelineSpec.Attention("denoiser", denoiser.getInt("num_attention_heads", 18), patch,
                    spec.denoiserTextLength()));
        }
        if (vae.getBoolean("mid_block_add_attention", true)) {
            // the VAE's mid blocks: one head over every latent pixel
            attention.add(new PipelineSpec.Attention("vae_decoder", 1, 1, 0));
            attention.add(new PipelineSpec.Attention("vae_encoder", 1, 1, 0));
        }
        spec.attention = attention;
    }

    /** Writes the scheduler-step graphs, DeepCache's graphs when asked for, and {@code spec}. */
    private static void writeSpec(PipelineSpec spec, Path out, Integer deepCacheBranch, PrintWriter log) throws IOException {
        if (deepCacheBranch != null) {
            DeepCacheSplitter.Split split = DeepCacheSplitter.split(OnnxModel.load(out.resolve(fileName(Component.UNET))),
                    deepCacheBranch);
            spec.deepCacheFull = "unet_deepcache_full.onnx";
            spec.deepCacheShallow = "unet_deepcache_shallow.onnx";
            spec.deepCacheBranch = deepCacheBranch;
            split.full().save(out.resolve(spec.deepCacheFull));
            split.shallow().save(out.resolve(spec.deepCacheShallow));
            log.printf("  %-14s branch %d: full UNet + shallow UNet, cached feature %s%n", "deepcache", deepCacheBranch,
                    split.cachedFeatureShape());
        }
        SchedulerStepGraph.build(false).save(out.resolve(spec.schedulerStep));
        SchedulerStepGraph.build(true).save(out.resolve(spec.schedulerStepGuided));
        spec.write(out);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        if (!Files.isDirectory(from)) {
            throw new IllegalArgumentException("missing folder " + from);
        }
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : files.toList()) {
                if (Files.isRegularFile(f)) {
                    Files.copy(f, to.resolve(f.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
