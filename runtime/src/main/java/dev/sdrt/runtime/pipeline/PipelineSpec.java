package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.io.AtomicFiles;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import com.google.gson.annotations.SerializedName;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * What a pipeline folder holds ({@code sdrt-pipeline.json}): the exported component files and the
 * few numbers the denoising loop needs that are not inside the graphs.
 */
public final class PipelineSpec {
    public static final String FILE_NAME = "sdrt-pipeline.json";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

    @SerializedName("format") public int format = 1;
    /** Which {@link PipelineFamily} wires the components: "sd", "sdxl" or "sd3". */
    @SerializedName("family") public String family = "sd";
    @SerializedName("arch") public String arch;
    @SerializedName("text_encoder") public String textEncoder = "text_encoder.onnx";
    /** SDXL's and SD3's second CLIP text encoder (null for SD 1.x/2.x). */
    @SerializedName("text_encoder_2") public String textEncoder2;
    /** The denoiser: a UNet (sd, sdxl) ... */
    @SerializedName("unet") public String unet = "unet.onnx";
    /** ... or SD3's transformer (then {@code unet} is null). */
    @SerializedName("transformer") public String transformer;
    @SerializedName("vae_decoder") public String vaeDecoder = "vae_decoder.onnx";
    /** The VAE encoder that image-to-image needs (null: the folder does text-to-image only). */
    @SerializedName("vae_encoder") public String vaeEncoder;
    /** The scheduler update as ONNX graphs, plain and with guidance, for loops that run on a device (null in older folders). */
    @SerializedName("scheduler_step") public String schedulerStep;
    @SerializedName("scheduler_step_guided") public String schedulerStepGuided;
    @SerializedName("tokenizer") public String tokenizer = "tokenizer";
    @SerializedName("tokenizer_2") public String tokenizer2;
    @SerializedName("scheduler_config") public String schedulerConfig = "scheduler/scheduler_config.json";
    @SerializedName("latent_channels") public int latentChannels = 4;
    /** Image pixels per latent pixel (2^(number of VAE up blocks - 1)). */
    @SerializedName("vae_scale_factor") public int vaeScaleFactor = 8;
    /** Latents are divided by this before decoding (the VAE's scaling_factor). */
    @SerializedName("vae_scaling_factor") public double vaeScalingFactor = 0.18215;
    /** ... after subtracting this (the VAE's shift_factor; SD3's VAE has one, older ones do not). */
    @SerializedName("vae_shift_factor") public double vaeShiftFactor;
    /** SDXL: an empty negative prompt becomes zero embeddings instead of the encoded empty string. */
    @SerializedName("force_zeros_for_empty_prompt") public boolean forceZerosForEmptyPrompt;
    /**
     * SD3 without its T5 encoder: this many zero tokens follow the CLIP tokens in the transformer's
     * text input, as diffusers does when text_encoder_3 is absent.
     */
    @SerializedName("t5_sequence_length") public int t5SequenceLength = 77;
    @SerializedName("default_height") public int defaultHeight = 512;
    @SerializedName("default_width") public int defaultWidth = 512;
    @SerializedName("max_text_length") public int maxTextLength = 77;
    /** DeepCache graphs (null when the folder has none): the UNet with the deep feature as an extra output ... */
    @SerializedName("deepcache_full") public String deepCacheFull;
    /** ... and the shallow UNet that takes it as an input. */
    @SerializedName("deepcache_shallow") public String deepCacheShallow;
    @SerializedName("deepcache_branch") public int deepCacheBranch;

    public static PipelineSpec read(Path folder) throws IOException {
        Path file = folder.resolve(FILE_NAME);
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null,
                    "not an sdrt pipeline folder (make one with 'sdrt export-pipeline')");
        }
        PipelineSpec spec;
        try {
            spec = GSON.fromJson(Files.readString(file), PipelineSpec.class);
        } catch (JsonParseException e) {
            throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        if (spec == null) {
            throw new IOException(file + " is empty");
        }
        PipelineFamily family;
        try {
            family = spec.family();
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
        if (spec.denoiser() == null) {
            throw new IOException(file + ": names no " + (family == PipelineFamily.SD3 ? "transformer" : "unet"));
        }
        if (family != PipelineFamily.SD && (spec.textEncoder2 == null || spec.tokenizer2 == null)) {
            throw new IOException(file + ": a " + family.id() + " pipeline needs text_encoder_2 and tokenizer_2");
        }
        if (spec.t5SequenceLength < 0) {
            throw new IOException(file + ": t5_sequence_length must not be negative");
        }
        if (spec.vaeScaleFactor <= 0 || spec.latentChannels <= 0 || spec.vaeScalingFactor <= 0) {
            throw new IOException(file + ": latent_channels, vae_scale_factor and vae_scaling_factor must be positive");
        }
        return spec;
    }

    public PipelineFamily family() {
        return PipelineFamily.of(family);
    }

    /** The denoiser's file: the transformer for SD3, else the UNet. */
    public String denoiser() {
        return family() == PipelineFamily.SD3 ? transformer : unet;
    }

    /** The denoiser's text sequence length: the CLIP tokens, followed by T5's for SD3. */
    public int denoiserTextLength() {
        return maxTextLength + (family() == PipelineFamily.SD3 ? t5SequenceLength : 0);
    }

    /** Writes the spec into {@code folder} (temp file, then move). */
    public void write(Path folder) throws IOException {
        String json = GSON.toJson(this);
        AtomicFiles.write(folder.resolve(FILE_NAME), tmp -> Files.writeString(tmp, json));
    }
}
