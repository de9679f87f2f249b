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
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

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
    /**
     * Latent sides must be multiples of this for the denoiser: 2^(down-samplings) for a UNet, whose
     * skip connections must meet feature maps of equal size, the patch size for a transformer. 0 in
     * folders written before sdrt recorded it, where only the VAE's factor is checked.
     */
    @SerializedName("latent_size_multiple") public int latentSizeMultiple;
    /** The largest latent side the denoiser takes (SD3: patch size × pos_embed_max_size); 0 for no limit. */
    @SerializedName("max_latent_size") public int maxLatentSize;
    /**
     * The attention layers whose scores grow with the image, for refusing sizes whose score matrices
     * cannot fit in memory (see {@link #largestAttentionScores}); null in older folders.
     */
    @SerializedName("attention") public List<Attention> attention;

    /**
     * An attention layer (or a level of them) of one component.
     *
     * @param component "denoiser" (its batch doubles with guidance), "vae_decoder" or "vae_encoder"
     * @param latentPixelsPerToken latent pixels per token along each side: 1 where every latent pixel
     *     is a token, 2^i at a UNet's i-th level, the patch size in a transformer
     * @param extraTokens tokens that join the image's whatever its size (SD3's text tokens in its
     *     joint attention)
     */
    public record Attention(@SerializedName("component") String component, @SerializedName("heads") int heads,
            @SerializedName("latent_pixels_per_token") int latentPixelsPerToken, @SerializedName("extra_tokens") int extraTokens) {
    }

    /**
     * The largest score matrix (batch × heads × tokens × tokens) of a request, among the components
     * {@code onHost} names.
     *
     * @param bytes the matrix's size at {@code elementBytes} per score
     */
    public record AttentionScores(String component, long batch, int heads, long tokens, long bytes) {
    }

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
            throw new IOException(file + ": names no " + spec.denoiserKey());
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

    /** The denoiser's key in the file, and the name its loading is reported under: "transformer" for SD3, else "unet". */
    public String denoiserKey() {
        return family() == PipelineFamily.SD3 ? "transformer" : "unet";
    }

    /** The denoiser's text sequence length: the CLIP tokens, followed by T5's for SD3. */
    public int denoiserTextLength() {
        return maxTextLength + (family() == PipelineFamily.SD3 ? t5SequenceLength : 0);
    }

    /**
     * Image pixels per side that widths and heights must be multiples of: the VAE's scale factor
     * times the denoiser's {@link #latentSizeMultiple}.
     */
    public int sizeMultiple() {
        return vaeScaleFactor * Math.max(1, latentSizeMultiple);
    }

    /**
     * Why an image of {@code width} × {@code height} does not fit the denoiser, with the nearest
     * sizes that do; null when it fits.
     */
    public String sizeProblem(int width, int height) {
        int multiple = sizeMultiple();
        int largest = maxLatentSize > 0 ? maxLatentSize * vaeScaleFactor / multiple * multiple : Integer.MAX_VALUE;
        if (width % multiple == 0 && height % multiple == 0 && width <= largest && height <= largest) {
            return null;
        }
        String rule = latentSizeMultiple <= 1 ? "multiples of " + multiple + " (the VAE scale factor)"
                : String.format(Locale.ROOT, "multiples of %d (VAE scale factor %d × %s %d)", multiple, vaeScaleFactor,
                        family().hasUnet() ? "UNet downsampling" : "transformer patch size", latentSizeMultiple);
        if (largest != Integer.MAX_VALUE) {
            rule += " and at most " + largest + " (the transformer's position embedding covers " + maxLatentSize
                    + " latent pixels)";
        }
        int belowW = Math.min(largest, Math.max(multiple, width / multiple * multiple));
        int belowH = Math.min(largest, Math.max(multiple, height / multiple * multiple));
        int aboveW = Math.min(largest, (width + multiple - 1) / multiple * multiple);
        int aboveH = Math.min(largest, (height + multiple - 1) / multiple * multiple);
        String nearest = belowW == aboveW && belowH == aboveH ? "the nearest size that fits is " + belowW + "x" + belowH
                : "the nearest sizes that fit are " + belowW + "x" + belowH + " and " + aboveW + "x" + aboveH;
        return "width and height must be " + rule + ", got " + width + "x" + height + "; " + nearest;
    }

    /**
     * The largest attention score matrix a request of {@code images} at {@code width} × {@code height}
     * needs at once, among the {@link #attention} layers of the components {@code onHost} accepts;
     * null when the folder records none. Unfused attention (MatMul, Softmax, MatMul) holds the whole
     * matrix, and tokens grow with the image's area, so this is what outgrows memory first at large sizes.
     *
     * @param guided whether guidance doubles the denoiser's batch
     * @param encodes whether the VAE encoder runs (image to image; one image per call)
     */
    public AttentionScores largestAttentionScores(int width, int height, int images, boolean guided, boolean encodes,
            int elementBytes, Predicate<String> onHost) {
        if (attention == null) {
            return null;
        }
        long latentH = height / vaeScaleFactor;
        long latentW = width / vaeScaleFactor;
        AttentionScores largest = null;
        for (Attention a : attention) {
            long batch = switch (a.component()) {
                case "denoiser" -> images * (guided ? 2L : 1L);
                case "vae_decoder" -> images;
                case "vae_encoder" -> encodes ? 1 : 0;
                default -> 0;
            };
            if (batch == 0 || !onHost.test(a.component())) {
                continue;
            }
            int d = a.latentPixelsPerToken();
            long tokens = ((latentH + d - 1) / d) * ((latentW + d - 1) / d) + a.extraTokens();
            // doubles: a matrix of a very large image passes Long.MAX_VALUE bytes
            double bytes = (double) batch * a.heads() * tokens * tokens * elementBytes;
            long clamped = bytes >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) bytes;
            if (largest == null || clamped > largest.bytes()) {
                largest = new AttentionScores(a.component(), batch, a.heads(), tokens, clamped);
            }
        }
        return largest;
    }

    /** Writes the spec into {@code folder} (temp file, then move). */
    public void write(Path folder) throws IOException {
        String json = GSON.toJson(this);
        AtomicFiles.write(folder.resolve(FILE_NAME), tmp -> Files.writeString(tmp, json));
    }
}
