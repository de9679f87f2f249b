package dev.sdrt.cli;

import dev.sdrt.exporter.Component;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.Exporter;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.passes.DeepCacheSplitter;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * Writes a pipeline folder that {@code sdrt generate} runs: one ONNX file per component, the
 * tokenizer, the scheduler config and {@code sdrt-pipeline.json}.
 */
final class PipelineFolder {
    private static final List<Component> SD_COMPONENTS = List.of(Component.TEXT_ENCODER, Component.UNET, Component.VAE_DECODER);

    private PipelineFolder() {
    }

    /** From a diffusers pipeline folder (model_index.json with text_encoder/, unet/, vae/, tokenizer/, scheduler/). */
    static void fromDiffusers(Path source, Path out, ExportOptions options, Integer deepCacheBranch, PrintWriter log)
            throws IOException {
        if (!Files.isRegularFile(source.resolve("model_index.json"))) {
            throw new IllegalArgumentException(source + " is not a diffusers pipeline folder (no model_index.json)");
        }
        if (Files.isDirectory(source.resolve("text_encoder_2"))) {
            throw new IllegalArgumentException(source + " is an SDXL pipeline; sdrt generate runs SD 1.x/2.x pipelines so far");
        }
        Files.createDirectories(out);
        for (Component c : SD_COMPONENTS) {
            Exporter.Result r = Exporter.fromCheckpoint(source.resolve(c.folder()), c, options);
            save(r, out, c, log);
        }
        copyTree(source.resolve("tokenizer"), out.resolve("tokenizer"));
        Files.createDirectories(out.resolve("scheduler"));
        Files.copy(source.resolve("scheduler/scheduler_config.json"), out.resolve("scheduler/scheduler_config.json"),
                StandardCopyOption.REPLACE_EXISTING);
        writeSpec(DiffusersConfig.load(source.resolve("vae")), source.getFileName().toString(), out, deepCacheBranch, log);
    }

    /**
     * A built-in architecture with random weights. Its tokenizer is character level (every byte is a
     * token), since no real vocabulary ships with sdrt; prompts still encode deterministically.
     */
    static void random(String arch, long seed, Path out, ExportOptions options, Integer deepCacheBranch, PrintWriter log)
            throws IOException {
        Files.createDirectories(out);
        for (Component c : SD_COMPONENTS) {
            save(Exporter.random(arch, c, seed, options), out, c, log);
        }
        CharacterTokenizerFiles.write(out.resolve("tokenizer"));
        Files.createDirectories(out.resolve("scheduler"));
        Files.writeString(out.resolve("scheduler/scheduler_config.json"), """
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
                """, StandardCharsets.UTF_8);
        writeSpec(Exporter.builtInConfig(arch, Component.VAE_DECODER), arch, out, deepCacheBranch, log);
    }

    private static void save(Exporter.Result r, Path out, Component c, PrintWriter log) throws IOException {
        Path file = out.resolve(fileName(c));
        r.model().save(file);
        log.printf("  %-14s %-28s %,14d parameters -> %s%n", c, r.modelClass(), r.parameterCount(), file.getFileName());
        log.flush();
    }

    private static String fileName(Component c) {
        return c.cliName().replace('-', '_') + ".onnx";
    }

    private static void writeSpec(DiffusersConfig vae, String arch, Path out, Integer deepCacheBranch, PrintWriter log)
            throws IOException {
        PipelineSpec spec = new PipelineSpec();
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
        spec.arch = arch;
        spec.textEncoder = fileName(Component.TEXT_ENCODER);
        spec.unet = fileName(Component.UNET);
        spec.vaeDecoder = fileName(Component.VAE_DECODER);
        spec.latentChannels = vae.getInt("latent_channels", 4);
        int upBlocks = vae.requireStringList("up_block_types").size();
        spec.vaeScaleFactor = 1 << (upBlocks - 1);
        spec.vaeScalingFactor = vae.getDouble("scaling_factor", 0.18215);
        int sample = vae.getInt("sample_size", 512);
        spec.defaultHeight = sample;
        spec.defaultWidth = sample;
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
