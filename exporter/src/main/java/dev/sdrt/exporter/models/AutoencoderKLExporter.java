package dev.sdrt.exporter.models;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.builder.GraphBuilder;
import dev.sdrt.exporter.builder.GraphBuilder.Scope;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.weights.Weights;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Value;
import java.util.List;

/**
 * diffusers' {@code AutoencoderKL} as two ONNX graphs, the decoder and the encoder, with the parameter names of
 * the whole model's checkpoint ({@code decoder.*}, {@code post_quant_conv.*}, {@code encoder.*}, {@code
 * quant_conv.*}).
 *
 * <p>Neither graph applies {@code scaling_factor} (or {@code shift_factor}): the runtime divides latents by it
 * before decoding and multiplies the encoder's mean by it, as diffusers' pipelines do outside the model.
 *
 * <p>Height and width are the graph input's own: latent pixels for the decoder, image pixels for the encoder,
 * which must be a multiple of 2^(number of down blocks - 1).
 */
public final class AutoencoderKLExporter {
    private static final String CLASS_NAME = "AutoencoderKL";
    /** diffusers fixes the VAE's norm epsilon; the config has no key for it. */
    private static final double EPS = 1e-6;

    private final VaeConfig config;
    private final ExportOptions options;
    private final GraphBuilder b;
    private final Blocks2D blocks;

    private AutoencoderKLExporter(String graphName, VaeConfig config, Weights weights, ExportOptions options) {
        this.config = config;
        this.options = options;
        this.b = new GraphBuilder(graphName, weights, options.precision());
        this.blocks = new Blocks2D(b, config.normGroups, EPS, config.act);
    }

    /**
     * {@code AutoencoderKL.decode}: input {@code latent_sample} [batch, latent_channels, height, width] (already
     * divided by scaling_factor), output {@code sample} [batch, out_channels, height * f, width * f] with f =
     * 2^(number of up blocks - 1), the image in [-1, 1] (not clamped).
     */
    public static OnnxModel exportDecoder(DiffusersConfig config, Weights weights, ExportOptions options) {
        return new AutoencoderKLExporter("vae_decoder", VaeConfig.read(config), weights, options).buildDecoder();
    }

    /**
     * {@code AutoencoderKL.encode(...).latent_dist.mean}: input {@code sample} [batch, in_channels, height, width],
     * the image in [-1, 1]; output {@code latent} [batch, latent_channels, height / f, width / f], the mean of the
     * latent distribution (the first half of quant_conv's channels), not yet multiplied by scaling_factor. The log
     * variance is not computed into an output: image-to-image pipelines sample near the mean, and a graph output
     * for it can be added when a use appears.
     */
    public static OnnxModel exportEncoder(DiffusersConfig config, Weights weights, ExportOptions options) {
        VaeConfig vae = VaeConfig.read(config);
        if (options.staticShapes()) {
            long multiple = vae.downsamplingFactor();
            if (options.height() % multiple != 0 || options.width() % multiple != 0) {
                throw new IllegalArgumentException("VAE encoder image size " + options.height() + "x" + options.width()
                        + " must be a multiple of " + multiple + " in both directions");
            }
        }
        return new AutoencoderKLExporter("vae_encoder", vae, weights, options).buildEncoder();
    }

    private OnnxModel buildDecoder() {
        DataType dtype = b.dtype();
        Object batch = options.batchDim();
        long latent = config.latentChannels;
        Value z = b.input("latent_sample", dtype, batch, latent, options.heightDim(), options.widthDim());
        if (config.usePostQuantConv) {
            z = b.conv2d("post_quant_conv", z, latent, latent, 1, 1, 0, true);
        }
        List<Integer> channels = config.blockOut;
        int n = channels.size();
        Value h;
        try (Scope s = b.scope("decoder")) {
            long top = channels.get(n - 1);
            h = b.conv2d("conv_in", z, latent, top, 3, 1, 1, true);
            h = midBlock(h, top);
            long out = top;
            for (int i = 0; i < n; i++) {
                long in = out;
                out = channels.get(n - 1 - i);
                h = upDecoderBlock(i, h, in, out, i < n - 1);
            }
            h = blocks.act(blocks.groupNorm("conv_norm_out", h, out, EPS));
            h = b.conv2d("conv_out", h, out, config.outChannels, 3, 1, 1, true);
        }
        double f = config.downsamplingFactor();
        b.output("sample", h, dtype, batch, config.outChannels, options.scaled(options.heightDim(), f, "*" + (long) f),
                options.scaled(options.widthDim(), f, "*" + (long) f));
        return b.toModel();
    }

    private OnnxModel buildEncoder() {
        DataType dtype = b.dtype();
        Object batch = options.batchDim();
        Value x = b.input("sample", dtype, batch, config.inChannels, options.heightDim(), options.widthDim());
        List<Integer> channels = config.blockOut;
        int n = channels.size();
        long moments = 2L * config.latentChannels;
        Value h;
        try (Scope s = b.scope("encoder")) {
            long out = channels.get(0);
            h = b.conv2d("conv_in", x, config.inChannels, out, 3, 1, 1, true);
            for (int i = 0; i < n; i++) {
                long in = out;
                out = channels.get(i);
                h = downEncoderBlock(i, h, in, out, i < n - 1);
            }
            h = midBlock(h, out);
            h = blocks.act(blocks.groupNorm("conv_norm_out", h, out, EPS));
            h = b.conv2d("conv_out", h, out, moments, 3, 1, 1, true);
        }
        if (config.useQuantConv) {
            h = b.conv2d("quant_conv", h, moments, moments, 1, 1, 0, true);
        }
        Value mean = b.slice(h, 1, 0, config.latentChannels);
        double f = 1.0 / config.downsamplingFactor();
        String suffix = "/" + config.downsamplingFactor();
        b.output("latent", mean, dtype, batch, config.latentChannels, options.scaled(options.heightDim(), f, suffix),
                options.scaled(options.widthDim(), f, suffix));
        return b.toModel();
    }

    /** DownEncoderBlock2D: layers_per_block resnets, then (except last) the padded stride-2 conv. */
    private Value downEncoderBlock(int i, Value h, long in, long out, boolean downsample) {
        try (Scope s = b.scope("down_blocks." + i)) {
            for (int j = 0; j < config.layersPerBlock; j++) {
                h = blocks.resnet("resnets." + j, h, j == 0 ? in : out, out, null, 0, 1);
            }
            // diffusers' encoder uses downsample_padding 0: pad right and bottom, then an unpadded conv
            return downsample ? blocks.downsample("downsamplers.0", h, out, 0) : h;
        }
    }

    /** UpDecoderBlock2D: layers_per_block + 1 resnets, then (except last) nearest x2 and a conv. */
    private Value upDecoderBlock(int i, Value h, long in, long out, boolean upsample) {
        try (Scope s = b.scope("up_blocks." + i)) {
            for (int j = 0; j < config.layersPerBlock + 1; j++) {
                h = blocks.resnet("resnets." + j, h, j == 0 ? in : out, out, null, 0, 1);
            }
            return upsample ? blocks.upsample("upsamplers.0", h, out) : h;
        }
    }

    /** UNetMidBlock2D without time embedding: resnet, single-head self-attention (if enabled), resnet. */
    private Value midBlock(Value h, long channels) {
        try (Scope s = b.scope("mid_block")) {
            h = blocks.resnet("resnets.0", h, channels, channels, null, 0, 1);
            if (config.midBlockAttention) {
                h = spatialAttention("attentions.0", h, channels);
            }
            return blocks.resnet("resnets.1", h, channels, channels, null, 0, 1);
        }
    }

    /**
     * The mid block's Attention over pixels: group norm, Linear to_q/to_k/to_v (with bias) on the H*W tokens, one
     * head of width {@code channels}, to_out.0, plus the input (residual_connection, rescale factor 1).
     */
    private Value spatialAttention(String module, Value x, long channels) {
        try (Scope s = b.scope(module)) {
            Value tokens = blocks.toTokens(blocks.groupNorm("group_norm", x, channels, EPS), channels);
            Value q = b.linear("to_q", tokens, channels, channels, true);
            Value k = b.linear("to_k", tokens, channels, channels, true);
            Value v = b.linear("to_v", tokens, channels, channels, true);
            Value o = b.linear("to_out.0", b.attention(q, k, v, 1, channels), channels, channels, true);
            return b.add(blocks.toImage(o, x), x);
        }
    }

    /** The settings the graphs depend on, with AutoencoderKL's defaults. */
    private record VaeConfig(int inChannels, int outChannels, int latentChannels, List<Integer> blockOut,
            int layersPerBlock, int normGroups, String act, boolean midBlockAttention, boolean useQuantConv,
            boolean usePostQuantConv) {

        long downsamplingFactor() {
            return 1L << (blockOut.size() - 1);
        }

        static VaeConfig read(DiffusersConfig c) {
            if (!CLASS_NAME.equals(c.className())) {
                throw new ConfigException(c.file() + ": model class '" + abbreviate(c.className()) + "' is not "
                        + CLASS_NAME);
            }
            List<Integer> blockOut = c.intList("block_out_channels", List.of(64), Blocks2D.MAX_BLOCKS,
                    1, DiffusersConfig.MAX_SIZE);
            int n = blockOut.size();
            checkBlockTypes(c, "down_block_types", "DownEncoderBlock2D", n);
            checkBlockTypes(c, "up_block_types", "UpDecoderBlock2D", n);
            int normGroups = c.getInt("norm_num_groups", 32);
            if (normGroups < 1 || blockOut.stream().anyMatch(channels -> channels % normGroups != 0)) {
                throw c.invalid("norm_num_groups", normGroups, "a positive integer that divides every block's channel"
                        + " count (block_out_channels " + abbreviate(blockOut.toString()) + ")");
            }
            String act = c.getString("act_fn", "silu");
            if (!GraphBuilder.ACTIVATIONS.contains(act)) {
                throw new ConfigException(c.file() + ": act_fn \"" + abbreviate(act) + "\" is not supported by sdrt's "
                        + CLASS_NAME + " exporter (supported: " + GraphBuilder.ACTIVATIONS + ")");
            }
            return new VaeConfig(c.size("in_channels", 3), c.size("out_channels", 3), c.size("latent_channels", 4),
                    blockOut, c.layerCount("layers_per_block", 1), normGroups, act,
                    c.getBoolean("mid_block_add_attention", true), c.getBoolean("use_quant_conv", true),
                    c.getBoolean("use_post_quant_conv", true));
        }

        private static void checkBlockTypes(DiffusersConfig c, String key, String supported, int blocks) {
            List<String> types = c.getStringList(key).orElse(List.of(supported));
            for (int i = 0; i < types.size(); i++) {
                if (!types.get(i).equals(supported)) {
                    throw new ConfigException(c.file() + ": " + key + "[" + i + "] = \"" + abbreviate(types.get(i))
                            + "\" is not supported by sdrt's " + CLASS_NAME + " exporter (supported: " + supported + ")");
                }
            }
            if (types.size() != blocks) {
                throw new ConfigException(c.file() + ": " + key + " has " + types.size() + " entries but block_out_channels "
                        + blocks);
            }
        }
    }
}
