package dev.sdrt.calibration;

import dev.sdrt.exporter.Component;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.Exporter;
import dev.sdrt.exporter.pipeline.CharacterTokenizerFiles;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the pipeline folder that {@code sdrt export-pipeline --arch tiny --random-weights} writes
 * (the CLI module cannot be a dependency here): the three ONNX components, a character-level CLIP
 * tokenizer, an Euler scheduler config and {@code sdrt-pipeline.json}.
 */
final class TinyPipeline {
    private TinyPipeline() {
    }

    static Path write(Path out, long seed) throws IOException {
        Files.createDirectories(out);
        ExportOptions options = ExportOptions.defaults();
        Exporter.random("tiny", Component.TEXT_ENCODER, seed, options).model().save(out.resolve("text_encoder.onnx"));
        Exporter.random("tiny", Component.UNET, seed, options).model().save(out.resolve("unet.onnx"));
        Exporter.random("tiny", Component.VAE_DECODER, seed, options).model().save(out.resolve("vae_decoder.onnx"));
        CharacterTokenizerFiles.write(out.resolve("tokenizer"));
        Files.createDirectories(out.resolve("scheduler"));
        Files.writeString(out.resolve("scheduler/scheduler_config.json"), """
                {"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
                 "beta_end": 0.012, "beta_schedule": "scaled_linear", "prediction_type": "epsilon",
                 "timestep_spacing": "leading", "steps_offset": 1}
                """);
        var vae = Exporter.builtInConfig("tiny", Component.VAE_DECODER);
        PipelineSpec spec = new PipelineSpec();
        spec.arch = "tiny";
        spec.latentChannels = vae.getInt("latent_channels", 4);
        spec.vaeScaleFactor = 1 << (vae.requireStringList("up_block_types").size() - 1);
        spec.vaeScalingFactor = vae.getDouble("scaling_factor", 0.18215);
        spec.defaultHeight = vae.getInt("sample_size", 512);
        spec.defaultWidth = spec.defaultHeight;
        spec.write(out);
        return out;
    }
}
