package dev.sdrt.exporter.models;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.builder.GraphBuilder;
import dev.sdrt.exporter.builder.GraphBuilder.Scope;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.weights.Weights;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * diffusers' {@code UNet2DConditionModel} as ONNX, in the layouts of Stable Diffusion 1.x, 2.x and XL.
 *
 * <p>Inputs: {@code sample} [batch, in_channels, height, width], {@code timestep} [batch] float32,
 * {@code encoder_hidden_states} [batch, sequence, cross_attention_dim]; with {@code addition_embed_type "text_time"}
 * (SDXL) also {@code text_embeds} [batch, projection_class_embeddings_input_dim - 6 * addition_time_embed_dim] and
 * {@code time_ids} [batch, 6] float32. Output: {@code out_sample} [batch, out_channels, height, width]. Every
 * input and output except the two float32 ones has the export type; timesteps and time ids stay float32 because
 * they only feed the sinusoidal embeddings, which are computed in float32 (timesteps reach 1000 and image sizes in
 * time_ids 4096, too coarse in float16). Height and width must be multiples of 2^(number of down blocks - 1).
 *
 * <p>Supported settings: the four block types {@code CrossAttnDownBlock2D}, {@code DownBlock2D}, {@code
 * CrossAttnUpBlock2D}, {@code UpBlock2D} in any order, the {@code UNetMidBlock2DCrossAttn} mid block, head counts
 * from {@code num_attention_heads} or, as diffusers reads it, from {@code attention_head_dim} (int or per block),
 * {@code transformer_layers_per_block} and {@code layers_per_block} (int or per block), {@code
 * use_linear_projection}, {@code flip_sin_to_cos}, {@code freq_shift}, {@code time_embedding_dim}, kernel sizes of
 * conv_in and conv_out, output scale factors. {@code upcast_attention} has no effect: attention scores are computed
 * with the query pre-scaled in the export type and softmax runs in float32, like diffusers' default SDPA processor,
 * which ignores the flag too. Any other setting (class embeddings, other mid blocks, other attention or
 * embedding types) fails with a {@link ConfigException} naming the key and its value.
 */
public final class UNet2DConditionExporter {
    private static final String CLASS_NAME = "UNet2DConditionModel";
    private static final List<String> DOWN_BLOCKS = List.of("CrossAttnDownBlock2D", "DownBlock2D");
    private static final List<String> UP_BLOCKS = List.of("CrossAttnUpBlock2D", "UpBlock2D");
    /** SDXL's micro-conditioning: original size (h, w), crop top-left (y, x), target size (h, w). */
    private static final int TIME_IDS = 6;
    /** Epsilons that diffusers fixes inside Transformer2DModel and BasicTransformerBlock, whatever norm_eps says. */
    private static final double TRANSFORMER_GROUP_NORM_EPS = 1e-6;
    private static final double LAYER_NORM_EPS = 1e-5;
    /** FeedForward's hidden size as a multiple of the block width. */
    private static final int FF_MULT = 4;
    /** The largest conv_in and conv_out kernel accepted (diffusers' default is 3). */
    private static final int MAX_KERNEL = 31;
    /**
     * The most BasicTransformerBlocks a UNet may have in all (SDXL has 70): layers_per_block and
     * transformer_layers_per_block multiply, and a graph of millions of blocks would not fit in memory.
     */
    private static final long MAX_TRANSFORMER_BLOCKS = 10_000;

    private final UNetConfig config;
    private final ExportOptions options;
    private final GraphBuilder b;
    private final Blocks2D blocks;
    /** The time embedding after the resnets' activation, shared by every resnet. */
    private Value tembActivated;
    private Value encoderHiddenStates;

    private UNet2DConditionExporter(UNetConfig config, Weights weights, ExportOptions options) {
        this.config = config;
        this.options = options;
        this.b = new GraphBuilder("unet", weights, options.precision());
        this.blocks = new Blocks2D(b, config.normGroups, config.normEps, config.act);
    }

    /** Builds the UNet described by {@code config} with parameters from {@code weights}. */
    public static OnnxModel export(DiffusersConfig config, Weights weights, ExportOptions options) {
        UNetConfig unet = UNetConfig.read(config);
        if (options.staticShapes()) {
            long multiple = 1L << (unet.blockOut.size() - 1);
            if (options.height() % multiple != 0 || options.width() % multiple != 0) {
                throw new IllegalArgumentException("UNet sample size " + options.height() + "x" + options.width()
                        + " must be a multiple of " + multiple + " in both directions");
            }
        }
        return new UNet2DConditionExporter(unet, weights, options).build();
    }

    private OnnxModel build() {
        DataType dtype = b.dtype();
        Object batch = options.batchDim();
        Object height = options.heightDim();
        Object width = options.widthDim();
        Value sample = b.input("sample", dtype, batch, config.inChannels, height, width);
        Value timestep = b.input("timestep", DataType.FLOAT, batch);
        encoderHiddenStates = b.input("encoder_hidden_states", dtype, batch, options.sequenceDim(),
                config.crossAttentionDim);

        Value emb = timeEmbedding(timestep);
        if (config.additionTimeEmbedDim > 0) {
            Value textEmbeds = b.input("text_embeds", dtype, batch, config.textEmbedsDim());
            Value timeIds = b.input("time_ids", DataType.FLOAT, batch, TIME_IDS);
            emb = b.add(emb, textTimeEmbedding(textEmbeds, timeIds));
        }
        tembActivated = blocks.act(emb);

        Value h = b.conv2d("conv_in", sample, config.inChannels, config.blockOut.get(0), config.convInKernel, 1,
                (config.convInKernel - 1) / 2, true);
        List<Value> skips = new ArrayList<>();
        skips.add(h);
        for (int i = 0; i < config.downTypes.size(); i++) {
            h = downBlock(i, h, skips);
        }
        h = midBlock(h);
        for (int i = 0; i < config.upTypes.size(); i++) {
            h = upBlock(i, h, skips);
        }
        long c0 = config.blockOut.get(0);
        h = blocks.act(blocks.groupNorm("conv_norm_out", h, c0, config.normEps));
        h = b.conv2d("conv_out", h, c0, config.outChannels, config.convOutKernel, 1, (config.convOutKernel - 1) / 2, true);
        b.output("out_sample", h, dtype, batch, config.outChannels, height, width);
        return b.toModel();
    }

    /** time_proj (sinusoidal, float32) then the time_embedding MLP: [B] -> [B, time_embed_dim]. */
    private Value timeEmbedding(Value timestep) {
        long channels = config.blockOut.get(0);
        Value projected;
        try (Scope s = b.scope("time_proj")) {
            projected = b.timestepEmbedding(timestep, channels, config.flipSinToCos, config.freqShift, 1, 10000);
        }
        return timestepMlp("time_embedding", projected, channels, config.timeEmbedDim, config.act);
    }

    /**
     * SDXL's added condition: each of the six time ids gets its own sinusoidal embedding (add_time_proj), the six
     * are concatenated after text_embeds, and add_embedding maps the result to the time embedding's width.
     */
    private Value textTimeEmbedding(Value textEmbeds, Value timeIds) {
        long dim = config.additionTimeEmbedDim;
        Value timeEmbeds;
        try (Scope s = b.scope("add_time_proj")) {
            Value flat = b.reshape(timeIds, -1);
            Value perId = b.timestepEmbedding(flat, dim, config.flipSinToCos, config.freqShift, 1, 10000);
            timeEmbeds = b.reshape(perId, -1, TIME_IDS * dim);
        }
        Value addEmbeds = b.concat(-1, textEmbeds, timeEmbeds);
        // diffusers builds add_embedding with TimestepEmbedding's default activation, not act_fn
        return timestepMlp("add_embedding", addEmbeds, config.projectionInputDim, config.timeEmbedDim, "silu");
    }

    /** diffusers' TimestepEmbedding: linear_1, activation, linear_2. */
    private Value timestepMlp(String module, Value x, long in, long out, String activation) {
        try (Scope s = b.scope(module)) {
            Value h = b.activation(activation, b.linear("linear_1", x, in, out, true));
            return b.linear("linear_2", h, out, out, true);
        }
    }

    /**
     * CrossAttnDownBlock2D or DownBlock2D: resnets (each followed by a Transformer2DModel in the cross-attention
     * form), then a stride-2 conv except in the last block. Every resnet/attention output and the downsampled tensor
     * are pushed onto {@code skips} for the up blocks.
     */
    private Value downBlock(int i, Value h, List<Value> skips) {
        boolean crossAttention = config.downTypes.get(i).equals("CrossAttnDownBlock2D");
        long out = config.blockOut.get(i);
        long in = i == 0 ? out : config.blockOut.get(i - 1);
        try (Scope s = b.scope("down_blocks." + i)) {
            for (int j = 0; j < config.layersPerBlock.get(i); j++) {
                h = resnet("resnets." + j, h, j == 0 ? in : out, out, config.resnetOutScale);
                if (crossAttention) {
                    h = transformer2d("attentions." + j, h, out, config.heads.get(i), config.transformerLayers.get(i));
                }
                skips.add(h);
            }
            if (i < config.downTypes.size() - 1) {
                h = blocks.downsample("downsamplers.0", h, out, config.downsamplePadding);
                skips.add(h);
            }
            return h;
        }
    }

    /** UNetMidBlock2DCrossAttn with one layer: resnet, Transformer2DModel, resnet, at the lowest resolution. */
    private Value midBlock(Value h) {
        int last = config.blockOut.size() - 1;
        long channels = config.blockOut.get(last);
        try (Scope s = b.scope("mid_block")) {
            h = resnet("resnets.0", h, channels, channels, config.midBlockScale);
            h = transformer2d("attentions.0", h, channels, config.heads.get(last), config.transformerLayers.get(last));
            return resnet("resnets.1", h, channels, channels, config.midBlockScale);
        }
    }

    /**
     * CrossAttnUpBlock2D or UpBlock2D {@code i}, counted from the lowest resolution: layers_per_block + 1 resnets,
     * each on the concatenation of the running tensor and the most recent skip, then nearest x2 and a conv except in
     * the last block. Per-block settings are those of the mirrored down block.
     */
    private Value upBlock(int i, Value h, List<Value> skips) {
        int n = config.blockOut.size();
        int mirrored = n - 1 - i;
        boolean crossAttention = config.upTypes.get(i).equals("CrossAttnUpBlock2D");
        long out = config.blockOut.get(mirrored);
        long prevOut = config.blockOut.get(Math.min(mirrored + 1, n - 1));
        long skipIn = config.blockOut.get(Math.max(mirrored - 1, 0));
        int layers = config.layersPerBlock.get(mirrored) + 1;
        try (Scope s = b.scope("up_blocks." + i)) {
            for (int j = 0; j < layers; j++) {
                Value skip = skips.remove(skips.size() - 1);
                long skipChannels = j == layers - 1 ? skipIn : out;
                long resnetIn = (j == 0 ? prevOut : out) + skipChannels;
                h = resnet("resnets." + j, b.concat(1, h, skip), resnetIn, out, config.resnetOutScale);
                if (crossAttention) {
                    h = transformer2d("attentions." + j, h, out, config.heads.get(mirrored),
                            config.transformerLayers.get(mirrored));
                }
            }
            if (i < n - 1) {
                h = blocks.upsample("upsamplers.0", h, out);
            }
            return h;
        }
    }

    private Value resnet(String module, Value x, long in, long out, double outputScale) {
        return blocks.resnet(module, x, in, out, tembActivated, config.timeEmbedDim, outputScale);
    }

    /**
     * Transformer2DModel over an NCHW tensor: group norm (eps 1e-6), proj_in (1x1 conv before flattening to tokens,
     * or Linear after it with use_linear_projection), {@code layers} BasicTransformerBlocks, proj_out in the mirrored
     * place, plus the input.
     */
    private Value transformer2d(String module, Value x, long channels, long heads, int layers) {
        try (Scope s = b.scope(module)) {
            Value h = blocks.groupNorm("norm", x, channels, TRANSFORMER_GROUP_NORM_EPS);
            if (config.linearProjection) {
                h = b.linear("proj_in", blocks.toTokens(h, channels), channels, channels, true);
            } else {
                h = blocks.toTokens(b.conv2d("proj_in", h, channels, channels, 1, 1, 0, true), channels);
            }
            for (int k = 0; k < layers; k++) {
                h = basicTransformerBlock("transformer_blocks." + k, h, channels, heads);
            }
            if (config.linearProjection) {
                h = blocks.toImage(b.linear("proj_out", h, channels, channels, true), x);
            } else {
                h = b.conv2d("proj_out", blocks.toImage(h, x), channels, channels, 1, 1, 0, true);
            }
            return b.add(h, x);
        }
    }

    /** Pre-norm block on tokens [B, N, dim]: self-attention, cross-attention on the text, GEGLU feed-forward. */
    private Value basicTransformerBlock(String module, Value x, long dim, long heads) {
        try (Scope s = b.scope(module)) {
            Value n = b.layerNorm("norm1", x, dim, LAYER_NORM_EPS, true, true);
            x = b.add(attention("attn1", n, n, dim, dim, heads), x);
            n = b.layerNorm("norm2", x, dim, LAYER_NORM_EPS, true, true);
            x = b.add(attention("attn2", n, encoderHiddenStates, dim, config.crossAttentionDim, heads), x);
            n = b.layerNorm("norm3", x, dim, LAYER_NORM_EPS, true, true);
            return b.add(feedForward("ff", n, dim), x);
        }
    }

    /** diffusers' Attention: to_q/to_k/to_v without bias, scaled dot-product attention, to_out.0 with bias. */
    private Value attention(String module, Value x, Value context, long dim, long contextDim, long heads) {
        try (Scope s = b.scope(module)) {
            Value q = b.linear("to_q", x, dim, dim, false);
            Value k = b.linear("to_k", context, contextDim, dim, false);
            Value v = b.linear("to_v", context, contextDim, dim, false);
            Value o = b.attention(q, k, v, heads, dim / heads);
            return b.linear("to_out.0", o, dim, dim, true);
        }
    }

    /** FeedForward with GEGLU: net.0.proj to twice the hidden size, first half * gelu(second half), net.2 back. */
    private Value feedForward(String module, Value x, long dim) {
        long inner = dim * FF_MULT;
        try (Scope s = b.scope(module)) {
            Value projected;
            try (Scope net0 = b.scope("net.0")) {
                projected = b.linear("proj", x, dim, 2 * inner, true);
            }
            List<Value> halves = b.split(projected, -1, inner, inner);
            Value gated = b.mul(halves.get(0), b.gelu(halves.get(1)));
            return b.linear("net.2", gated, inner, dim, true);
        }
    }

    /** The settings the graph depends on, read and checked once. */
    private record UNetConfig(int inChannels, int outChannels, List<Integer> blockOut, List<String> downTypes,
            List<String> upTypes, List<Integer> layersPerBlock, List<Integer> transformerLayers, List<Integer> heads,
            int crossAttentionDim, int normGroups, double normEps, String act, boolean linearProjection,
            boolean flipSinToCos, double freqShift, int downsamplePadding, int convInKernel, int convOutKernel,
            int timeEmbedDim, double midBlockScale, double resnetOutScale, int additionTimeEmbedDim,
            int projectionInputDim) {

        int textEmbedsDim() {
            return projectionInputDim - TIME_IDS * additionTimeEmbedDim;
        }

        static UNetConfig read(DiffusersConfig c) {
            if (!CLASS_NAME.equals(c.className())) {
                throw new ConfigException(c.file() + ": model class '" + abbreviate(c.className()) + "' is not "
                        + CLASS_NAME);
            }
            rejectUnsupported(c);
            List<Integer> blockOut = c.intList("block_out_channels", List.of(320, 640, 1280, 1280), Blocks2D.MAX_BLOCKS, 1,
                    DiffusersConfig.MAX_SIZE);
            int n = blockOut.size();
            List<String> downTypes = c.requireStringList("down_block_types");
            List<String> upTypes = c.requireStringList("up_block_types");
            checkBlockTypes(c, "down_block_types", downTypes, DOWN_BLOCKS, n);
            checkBlockTypes(c, "up_block_types", upTypes, UP_BLOCKS, n);
            // diffusers' long-standing naming slip: attention_head_dim holds the number of heads unless
            // num_attention_heads is given
            String headsKey = c.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
            List<Integer> heads = c.perBlock(headsKey, n, 8, 1, DiffusersConfig.MAX_SIZE);
            for (int i = 0; i < n; i++) {
                boolean attends = downTypes.get(i).equals("CrossAttnDownBlock2D") || i == n - 1
                        || upTypes.get(n - 1 - i).equals("CrossAttnUpBlock2D");
                if (attends && blockOut.get(i) % heads.get(i) != 0) {
                    throw new ConfigException(c.file() + ": block " + i + " has " + blockOut.get(i) + " channels, which do"
                            + " not split into " + heads.get(i) + " attention heads (" + headsKey + ")");
                }
            }
            List<Integer> crossDims = c.perBlock("cross_attention_dim", n, 1280, 1, DiffusersConfig.MAX_SIZE);
            if (crossDims.stream().distinct().count() != 1) {
                throw unsupported(c, "cross_attention_dim", crossDims.toString(), "one width for every block");
            }
            int normGroups = c.getInt("norm_num_groups", 32);
            if (normGroups < 1 || blockOut.stream().anyMatch(channels -> channels % normGroups != 0)) {
                throw c.invalid("norm_num_groups", normGroups, "a positive integer that divides every block's channel"
                        + " count (block_out_channels " + abbreviate(blockOut.toString()) + ")");
            }
            int additionTimeEmbedDim = 0;
            int projectionInputDim = 0;
            if (c.has("addition_embed_type")) {
                additionTimeEmbedDim = c.requireSize("addition_time_embed_dim");
                projectionInputDim = c.requireSize("projection_class_embeddings_input_dim");
                if (projectionInputDim <= TIME_IDS * additionTimeEmbedDim) {
                    throw new ConfigException(c.file() + ": projection_class_embeddings_input_dim " + projectionInputDim
                            + " leaves no room for text_embeds beside " + TIME_IDS + " time ids of addition_time_embed_dim "
                            + additionTimeEmbedDim);
                }
            }
            List<Integer> layers = c.perBlock("layers_per_block", n, 2, 1, DiffusersConfig.MAX_LAYERS);
            List<Integer> transformerLayers = c.perBlock("transformer_layers_per_block", n, 1, 1,
                    DiffusersConfig.MAX_LAYERS);
            long transformerBlocks = transformerLayers.get(n - 1); // the mid block's
            for (int i = 0; i < n; i++) {
                int attentions = (downTypes.get(i).equals("CrossAttnDownBlock2D") ? layers.get(i) : 0)
                        + (upTypes.get(n - 1 - i).equals("CrossAttnUpBlock2D") ? layers.get(i) + 1 : 0);
                transformerBlocks += (long) attentions * transformerLayers.get(i);
            }
            if (transformerBlocks > MAX_TRANSFORMER_BLOCKS) {
                throw new ConfigException(c.file() + ": layers_per_block " + abbreviate(layers.toString())
                        + " and transformer_layers_per_block " + abbreviate(transformerLayers.toString()) + " make "
                        + transformerBlocks + " transformer blocks; sdrt exports at most " + MAX_TRANSFORMER_BLOCKS);
            }
            return new UNetConfig(c.size("in_channels", 4), c.size("out_channels", 4), blockOut, downTypes, upTypes,
                    layers, transformerLayers, heads,
                    crossDims.get(0), normGroups, c.positiveNumber("norm_eps", 1e-5), activation(c),
                    c.getBoolean("use_linear_projection", false), c.getBoolean("flip_sin_to_cos", true),
                    // diffusers' models use 0 or 1; near half the embedding width, the frequencies blow up
                    c.numberInRange("freq_shift", 0, 0, 1),
                    // 1 pads each side; 0 is the VAE's form, padding right and bottom: both halve exactly
                    c.intInRange("downsample_padding", 1, 0, 1), kernel(c, "conv_in_kernel"),
                    kernel(c, "conv_out_kernel"), c.size("time_embedding_dim", blockOut.get(0) * 4),
                    c.positiveNumber("mid_block_scale_factor", 1), c.positiveNumber("resnet_out_scale_factor", 1),
                    additionTimeEmbedDim, projectionInputDim);
        }

        /** An odd kernel size, so that the padding of (kernel - 1) / 2 keeps the image size. */
        private static int kernel(DiffusersConfig c, String key) {
            int kernel = c.getInt(key, 3);
            if (kernel < 1 || kernel > MAX_KERNEL || kernel % 2 == 0) {
                throw c.invalid(key, kernel, "an odd integer from 1 to " + MAX_KERNEL
                        + ", so that the convolution keeps the image size");
            }
            return kernel;
        }

        private static String activation(DiffusersConfig c) {
            String act = c.getString("act_fn", "silu");
            if (!GraphBuilder.ACTIVATIONS.contains(act)) {
                throw unsupported(c, "act_fn", "\"" + abbreviate(act) + "\"", GraphBuilder.ACTIVATIONS.toString());
            }
            return act;
        }

        /**
         * Settings of UNet2DConditionModel that no SD 1.x/2.x/XL checkpoint uses: each must be absent, null or the
         * value listed (diffusers' default).
         */
        private static void rejectUnsupported(DiffusersConfig c) {
            JsonObject json = c.json();
            for (String key : List.of("class_embed_type", "num_class_embeds", "encoder_hid_dim", "encoder_hid_dim_type",
                    "time_cond_proj_dim", "time_embedding_act_fn", "timestep_post_act", "cross_attention_norm",
                    "reverse_transformer_layers_per_block")) {
                requireOneOf(c, json, key, (Object) null);
            }
            for (String key : List.of("center_input_sample", "dual_cross_attention", "only_cross_attention",
                    "mid_block_only_cross_attention", "resnet_skip_time_act", "class_embeddings_concat")) {
                requireOneOf(c, json, key, null, false);
            }
            requireOneOf(c, json, "addition_embed_type", null, "text_time");
            requireOneOf(c, json, "resnet_time_scale_shift", null, "default");
            requireOneOf(c, json, "time_embedding_type", null, "positional");
            requireOneOf(c, json, "attention_type", null, "default");
            // null means "no mid block" to diffusers, unlike for the other keys
            if (json.has("mid_block_type") && json.get("mid_block_type").isJsonNull()) {
                throw unsupported(c, "mid_block_type", "null", "UNetMidBlock2DCrossAttn");
            }
            requireOneOf(c, json, "mid_block_type", null, "UNetMidBlock2DCrossAttn");
        }

        /** {@code supported} holds strings, booleans and null (absent or JSON null). */
        private static void requireOneOf(DiffusersConfig c, JsonObject json, String key, Object... supported) {
            JsonElement value = json.get(key);
            Object actual = value == null || value.isJsonNull() ? null
                    : value.isJsonPrimitive() && value.getAsJsonPrimitive().isBoolean() ? (Object) value.getAsBoolean()
                    : value.isJsonPrimitive() && value.getAsJsonPrimitive().isString() ? value.getAsString()
                    : value;
            for (Object option : supported) {
                if (Objects.equals(option, actual)) {
                    return;
                }
            }
            throw unsupported(c, key, abbreviate(String.valueOf(value)), Arrays.toString(supported));
        }

        private static void checkBlockTypes(DiffusersConfig c, String key, List<String> types, List<String> supported,
                int blocks) {
            for (int i = 0; i < types.size(); i++) {
                if (!supported.contains(types.get(i))) {
                    throw unsupported(c, key + "[" + i + "]", "\"" + abbreviate(types.get(i)) + "\"", supported.toString());
                }
            }
            if (types.size() != blocks) {
                throw new ConfigException(c.file() + ": " + key + " has " + types.size() + " entries but block_out_channels "
                        + blocks);
            }
        }

        private static ConfigException unsupported(DiffusersConfig c, String key, String value, String supported) {
            return new ConfigException(c.file() + ": " + key + " = " + value + " is not supported by sdrt's "
                    + CLASS_NAME + " exporter (supported: " + supported + ")");
        }
    }
}
