package dev.sdrt.exporter.models;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.builder.GraphBuilder;
import dev.sdrt.exporter.builder.GraphBuilder.Scope;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.weights.Init;
import dev.sdrt.exporter.weights.Weights;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.List;
import java.util.Set;

/**
 * The denoiser of Stable Diffusion 3 / 3.5: diffusers' {@code SD3Transformer2DModel} (MMDiT), as ONNX.
 *
 * <p>Inputs {@code hidden_states} [batch, in_channels, height, width], {@code encoder_hidden_states} [batch,
 * sequence, joint_attention_dim], {@code pooled_projections} [batch, pooled_projection_dim] in the export type,
 * and {@code timestep} [batch] always float32 (diffusers computes the sinusoidal embedding in float32 whatever
 * the model's type, and timesteps run to 1000, beyond what fp16 resolves). Output {@code sample} [batch,
 * out_channels, height, width]. Height and width must be multiples of patch_size and at most
 * patch_size * pos_embed_max_size. With static shapes the text length is {@link ExportOptions#sequenceLength()}
 * (333 = 77 CLIP + 256 T5 tokens in the SD3 pipelines).
 *
 * <p>The positional embedding table {@code pos_embed.pos_embed} [1, max*max, dim] is a fixed buffer, not a trained
 * parameter. When the checkpoint stores it (diffusers saves it whenever pos_embed_max_size is set) it is read from
 * there, as diffusers' loading does; otherwise (random weights, a checkpoint without it) it is computed here as
 * diffusers' {@code get_2d_sincos_pos_embed} computes it, and then it is a constant that {@link
 * Weights#parameterCount()} does not count.
 *
 * <p>SD3.5's dual attention blocks ({@code dual_attention_layers}: a second, image-only self-attention
 * {@code attn2} modulated by {@code norm1}'s extra three chunks) and {@code qk_norm: "rms_norm"} are supported.
 */
public final class Sd3TransformerExporter {
    /** Width of the sinusoidal timestep embedding (diffusers' Timesteps(num_channels=256)). */
    private static final long TIMESTEP_CHANNELS = 256;
    /** Epsilon of every LayerNorm and RMSNorm inside the transformer. */
    private static final double NORM_EPS = 1e-6;
    /** The most elements of the position table computed here: its float32 bytes must fit one buffer. */
    private static final long MAX_TABLE_ELEMENTS = Integer.MAX_VALUE / Float.BYTES;

    private final Sd3Config config;
    private final ExportOptions options;
    private final GraphBuilder b;
    private final long dim;

    private Sd3TransformerExporter(Sd3Config config, Weights weights, ExportOptions options) {
        this.config = config;
        this.options = options;
        this.b = new GraphBuilder("sd3_transformer", weights, options.precision());
        this.dim = (long) config.heads * config.headDim;
    }

    public static OnnxModel export(DiffusersConfig config, Weights weights, ExportOptions options) {
        return new Sd3TransformerExporter(Sd3Config.read(config), weights, options).build();
    }

    private record Streams(Value image, Value context) {
    }

    private OnnxModel build() {
        DataType dtype = b.dtype();
        Object batch = options.batchDim();
        Object height = options.heightDim();
        Object width = options.widthDim();
        Value latent = b.input("hidden_states", dtype, batch, (long) config.inChannels, height, width);
        Value context = b.input("encoder_hidden_states", dtype, batch, options.sequenceDim(), (long) config.jointAttentionDim);
        Value pooled = b.input("pooled_projections", dtype, batch, (long) config.pooledProjectionDim);
        Value timestep = b.input("timestep", DataType.FLOAT, batch);

        Value patchGrid = patchGrid(latent);
        Value image = patchEmbed(latent, patchGrid);
        Value temb = timeTextEmbed(timestep, pooled);
        // every AdaLayerNorm starts with SiLU(temb): compute it once
        Value tembAct = b.silu(temb);
        context = b.linear("context_embedder", context, config.jointAttentionDim, dim, true);
        Streams streams = new Streams(image, context);
        for (int i = 0; i < config.layers; i++) {
            streams = jointBlock(i, streams, tembAct);
        }
        image = adaNormContinuous("norm_out", streams.image, tembAct);
        image = b.linear("proj_out", image, dim, (long) config.patchSize * config.patchSize * config.outChannels, true);

        b.output("sample", unpatchify(image, patchGrid), dtype, batch, (long) config.outChannels, height, width);
        return b.toModel();
    }

    /** The patch grid [height/patch, width/patch] as an int64 vector: constant for static shapes, else computed. */
    private Value patchGrid(Value latent) {
        long p = config.patchSize;
        if (!options.staticShapes()) {
            return b.div(b.op("Slice", b.shapeOf(latent), b.longs(2), b.longs(4)), b.longs(p));
        }
        for (long side : new long[] {options.height(), options.width()}) {
            if (side % p != 0 || side / p > config.posEmbedMaxSize) {
                throw new IllegalArgumentException("latent size " + options.height() + "x" + options.width()
                        + " does not fit the transformer: each side must be a multiple of patch_size " + p
                        + " and at most " + p * config.posEmbedMaxSize + " (patch_size * pos_embed_max_size)");
            }
        }
        return b.longs(options.height() / p, options.width() / p);
    }

    /** PatchEmbed: a patch_size-strided conv to tokens [B, h*w, dim], plus the centre crop of the position table. */
    private Value patchEmbed(Value latent, Value patchGrid) {
        try (Scope s = b.scope("pos_embed")) {
            long p = config.patchSize;
            Value tokens = b.conv2d("proj", latent, config.inChannels, dim, p, p, 0, true);
            tokens = b.transpose(b.reshape(tokens, 0, dim, -1), 0, 2, 1);
            return b.add(tokens, croppedPositionEmbedding(patchGrid));
        }
    }

    /**
     * diffusers' cropped_pos_embed: the [h, w] window at the centre of the max x max table, as [1, h*w, dim];
     * top = (max - h) / 2, left = (max - w) / 2.
     */
    private Value croppedPositionEmbedding(Value patchGrid) {
        long max = config.posEmbedMaxSize;
        long[] dims = {1, max * max, dim};
        String name = b.paramName("pos_embed");
        Value table;
        if (b.weights().unused().contains(name)) {
            table = b.param("pos_embed", Init.EMBEDDING, dims);
        } else {
            // generated when saved, like random weights: 226 MB in float32 for SD3-medium
            int baseSize = config.sampleSize / config.patchSize;
            table = b.graph().addInitializer(name, TensorData.generated(b.dtype(), dims,
                    () -> TensorData.ofFloatsAs(b.dtype(), dims, sinCosTable(dim, (int) max, baseSize)).bytes()));
        }
        Value start = b.div(b.sub(b.longs(max, max), patchGrid), b.longs(2, 2));
        Value window = b.op("Slice", b.reshape(table, max, max, dim), start, b.add(start, patchGrid), b.longs(0, 1));
        return b.reshape(window, 1, -1, dim);
    }

    /**
     * diffusers' get_2d_sincos_pos_embed(embedDim, grid, base_size=baseSize, interpolation_scale=1), flattened
     * row-major [grid*grid, embedDim]: the first half of each row embeds the column coordinate, the second half
     * the row coordinate, each as [sin(pos * omega_k), cos(pos * omega_k)] with omega_k = 10000^(-k / (embedDim/4)).
     * Coordinates are arange(grid) / (grid / baseSize) in float32 and the rest in double, as diffusers does.
     */
    static float[] sinCosTable(long embedDim, int grid, int baseSize) {
        int quarter = (int) (embedDim / 4);
        double[] omega = new double[quarter];
        for (int k = 0; k < quarter; k++) {
            omega[k] = 1.0 / Math.pow(10000, k / (double) quarter);
        }
        float step = (float) ((double) grid / baseSize);
        float[] table = new float[(int) (grid * (long) grid * embedDim)];
        for (int row = 0; row < grid; row++) {
            for (int col = 0; col < grid; col++) {
                int at = (int) ((row * (long) grid + col) * embedDim);
                double x = (float) col / step;
                double y = (float) row / step;
                for (int k = 0; k < quarter; k++) {
                    table[at + k] = (float) Math.sin(x * omega[k]);
                    table[at + quarter + k] = (float) Math.cos(x * omega[k]);
                    table[at + 2 * quarter + k] = (float) Math.sin(y * omega[k]);
                    table[at + 3 * quarter + k] = (float) Math.cos(y * omega[k]);
                }
            }
        }
        return table;
    }

    /** CombinedTimestepTextProjEmbeddings: MLP(sinusoid(timestep)) + MLP(pooled text embedding) -> [B, dim]. */
    private Value timeTextEmbed(Value timestep, Value pooled) {
        try (Scope s = b.scope("time_text_embed")) {
            Value sinusoid = b.timestepEmbedding(timestep, TIMESTEP_CHANNELS, true, 0, 1, 10000);
            Value time = mlp("timestep_embedder", sinusoid, TIMESTEP_CHANNELS);
            Value text = mlp("text_embedder", pooled, config.pooledProjectionDim);
            return b.add(time, text);
        }
    }

    /** linear_1, SiLU, linear_2 (TimestepEmbedding and PixArtAlphaTextProjection have this same form). */
    private Value mlp(String module, Value x, long in) {
        try (Scope s = b.scope(module)) {
            return b.linear("linear_2", b.silu(b.linear("linear_1", x, in, dim, true)), dim, dim, true);
        }
    }

    /**
     * JointTransformerBlock {@code index}: image and text tokens attend jointly, each stream with its own
     * projections, AdaLayerNormZero modulation and feed-forward. The last block is context_pre_only: its text
     * stream is only normed (AdaLayerNormContinuous) to feed the attention, and returns no context.
     */
    private Streams jointBlock(int index, Streams in, Value tembAct) {
        boolean contextPreOnly = index == config.layers - 1;
        boolean dualAttention = config.dualAttentionLayers.contains(index);
        try (Scope s = b.scope("transformer_blocks." + index)) {
            // AdaLayerNormZero chunks: shift, scale, gate (attention); shift, scale, gate (MLP);
            // SD3.5's dual-attention variant adds shift, scale, gate for attn2
            List<Value> mod = modulation("norm1", tembAct, dualAttention ? 9 : 6);
            Value normed = b.layerNorm("norm1.norm", in.image, dim, NORM_EPS, false, false);
            Value imageIn = modulate(normed, mod.get(0), mod.get(1));

            List<Value> ctxMod = null;
            Value contextIn;
            if (contextPreOnly) {
                contextIn = adaNormContinuous("norm1_context", in.context, tembAct);
            } else {
                ctxMod = modulation("norm1_context", tembAct, 6);
                contextIn = modulate(b.layerNorm("norm1_context.norm", in.context, dim, NORM_EPS, false, false),
                        ctxMod.get(0), ctxMod.get(1));
            }

            Streams attn = jointAttention(imageIn, contextIn, contextPreOnly);
            Value image = b.add(in.image, b.mul(mod.get(2), attn.image));
            if (dualAttention) {
                Value image2 = modulate(normed, mod.get(6), mod.get(7));
                image = b.add(image, b.mul(mod.get(8), selfAttention(image2)));
            }
            Value ff = feedForward("ff", modulate(b.layerNorm("norm2", image, dim, NORM_EPS, false, false),
                    mod.get(3), mod.get(4)));
            image = b.add(image, b.mul(mod.get(5), ff));
            if (contextPreOnly) {
                return new Streams(image, null);
            }

            Value context = b.add(in.context, b.mul(ctxMod.get(2), attn.context));
            Value ffContext = feedForward("ff_context", modulate(
                    b.layerNorm("norm2_context", context, dim, NORM_EPS, false, false), ctxMod.get(3), ctxMod.get(4)));
            return new Streams(image, b.add(context, b.mul(ctxMod.get(5), ffContext)));
        }
    }

    /** {@code module}.linear(SiLU(temb)) cut into {@code chunks} pieces, each [B, 1, dim] to broadcast over tokens. */
    private List<Value> modulation(String module, Value tembAct, int chunks) {
        try (Scope s = b.scope(module)) {
            Value emb = b.unsqueeze(b.linear("linear", tembAct, dim, chunks * dim, true), 1);
            long[] sizes = new long[chunks];
            java.util.Arrays.fill(sizes, dim);
            return b.split(emb, 2, sizes);
        }
    }

    private Value modulate(Value normed, Value shift, Value scale) {
        return b.add(b.mul(normed, b.add(scale, b.scalar(1))), shift);
    }

    /** AdaLayerNormContinuous: LayerNorm without affine, then (1 + scale) and shift from SiLU(temb) — scale first. */
    private Value adaNormContinuous(String module, Value x, Value tembAct) {
        try (Scope s = b.scope(module)) {
            Value emb = b.unsqueeze(b.linear("linear", tembAct, dim, 2 * dim, true), 1);
            List<Value> scaleShift = b.split(emb, 2, dim, dim);
            return modulate(b.layerNorm("norm", x, dim, NORM_EPS, false, false), scaleShift.get(1), scaleShift.get(0));
        }
    }

    /**
     * JointAttnProcessor: attention over the concatenation [image tokens, text tokens], then each stream's part
     * through its output projection (to_out.0 for the image, to_add_out for the text unless context_pre_only).
     */
    private Streams jointAttention(Value image, Value context, boolean contextPreOnly) {
        try (Scope s = b.scope("attn")) {
            Value q = headNorm("norm_q", b.linear("to_q", image, dim, dim, true));
            Value k = headNorm("norm_k", b.linear("to_k", image, dim, dim, true));
            Value v = b.linear("to_v", image, dim, dim, true);
            Value cq = headNorm("norm_added_q", b.linear("add_q_proj", context, dim, dim, true));
            Value ck = headNorm("norm_added_k", b.linear("add_k_proj", context, dim, dim, true));
            Value cv = b.linear("add_v_proj", context, dim, dim, true);
            Value joint = b.attention(b.concat(1, q, cq), b.concat(1, k, ck), b.concat(1, v, cv), config.heads, config.headDim);

            Value imageTokens = b.op("Slice", b.shapeOf(image), b.longs(1), b.longs(2));
            Value imageOut = b.op("Slice", joint, b.longs(0), imageTokens, b.longs(1));
            imageOut = b.linear("to_out.0", imageOut, dim, dim, true);
            if (contextPreOnly) {
                return new Streams(imageOut, null);
            }
            Value contextOut = b.op("Slice", joint, imageTokens, b.longs(Long.MAX_VALUE), b.longs(1));
            return new Streams(imageOut, b.linear("to_add_out", contextOut, dim, dim, true));
        }
    }

    /** SD3.5's attn2: plain self-attention over the image tokens. */
    private Value selfAttention(Value image) {
        try (Scope s = b.scope("attn2")) {
            Value q = headNorm("norm_q", b.linear("to_q", image, dim, dim, true));
            Value k = headNorm("norm_k", b.linear("to_k", image, dim, dim, true));
            Value v = b.linear("to_v", image, dim, dim, true);
            return b.linear("to_out.0", b.attention(q, k, v, config.heads, config.headDim), dim, dim, true);
        }
    }

    /** qk_norm "rms_norm": RMSNorm over each head's features of [B, N, heads*headDim]; identity without qk_norm. */
    private Value headNorm(String module, Value x) {
        if (!config.qkNorm) {
            return x;
        }
        Value heads = b.reshape(x, 0, -1, config.heads, config.headDim);
        return b.reshape(b.rmsNorm(module, heads, config.headDim, NORM_EPS), 0, -1, dim);
    }

    /** FeedForward(activation_fn="gelu-approximate"): net.0.proj to 4*dim, tanh GELU, net.2 back to dim. */
    private Value feedForward(String module, Value x) {
        try (Scope s = b.scope(module)) {
            Value h = b.geluTanh(b.linear("net.0.proj", x, dim, 4 * dim, true));
            return b.linear("net.2", h, 4 * dim, dim, true);
        }
    }

    /** Tokens [B, h*w, p*p*C] back to an image [B, C, h*p, w*p] (diffusers' einsum "nhwpqc->nchpwq"). */
    private Value unpatchify(Value tokens, Value patchGrid) {
        long p = config.patchSize;
        long c = config.outChannels;
        Value patches = b.reshape(tokens, b.concat(0, b.longs(0), patchGrid, b.longs(p, p, c)));
        Value image = b.transpose(patches, 0, 5, 1, 3, 2, 4);
        return b.reshape(image, b.concat(0, b.longs(0, c), b.mul(patchGrid, b.longs(p))));
    }

    /** The config keys the graph depends on, with SD3Transformer2DModel's defaults. */
    private record Sd3Config(int sampleSize, int patchSize, int inChannels, int outChannels, int layers, int headDim,
            int heads, int jointAttentionDim, int pooledProjectionDim, int posEmbedMaxSize, boolean qkNorm,
            Set<Integer> dualAttentionLayers) {

        static Sd3Config read(DiffusersConfig c) {
            if (!"SD3Transformer2DModel".equals(c.className())) {
                throw new ConfigException(c.file() + ": model class '" + abbreviate(c.className())
                        + "' is not an SD3 transformer (expected SD3Transformer2DModel)");
            }
            String qkNorm = c.getString("qk_norm", null);
            if (qkNorm != null && !qkNorm.equals("rms_norm")) {
                throw new ConfigException(c.file() + ": qk_norm '" + abbreviate(qkNorm)
                        + "' is not supported (only null or \"rms_norm\")");
            }
            int inChannels = c.size("in_channels", 16);
            Sd3Config sd3 = new Sd3Config(c.size("sample_size", 128), c.size("patch_size", 2), inChannels,
                    c.size("out_channels", inChannels), c.layerCount("num_layers", 18), c.size("attention_head_dim", 64),
                    c.size("num_attention_heads", 18), c.size("joint_attention_dim", 4096),
                    c.size("pooled_projection_dim", 2048), c.size("pos_embed_max_size", 96), qkNorm != null,
                    Set.copyOf(c.getIntList("dual_attention_layers").orElse(List.of())));
            // diffusers' position table divides by sample_size // patch_size
            if (sd3.sampleSize < sd3.patchSize) {
                throw c.invalid("patch_size", sd3.patchSize, "at most sample_size (" + sd3.sampleSize + ")");
            }
            long innerDim = (long) sd3.heads * sd3.headDim;
            if (innerDim % 4 != 0) {
                throw new ConfigException(c.file() + ": num_attention_heads * attention_head_dim = " + innerDim
                        + " must be divisible by 4 for the 2D sin-cos position embedding");
            }
            int captionProjectionDim = c.size("caption_projection_dim", 1152);
            if (captionProjectionDim != innerDim) {
                throw new ConfigException(c.file() + ": caption_projection_dim " + captionProjectionDim
                        + " must equal num_attention_heads * attention_head_dim = " + innerDim
                        + ", the width both token streams share in joint attention");
            }
            long tableElements = (long) sd3.posEmbedMaxSize * sd3.posEmbedMaxSize * innerDim;
            if (tableElements > MAX_TABLE_ELEMENTS) {
                throw c.invalid("pos_embed_max_size", sd3.posEmbedMaxSize, "small enough for the position table of"
                        + " pos_embed_max_size^2 * " + innerDim + " (the inner width) to hold at most "
                        + MAX_TABLE_ELEMENTS + " elements");
            }
            for (int layer : sd3.dualAttentionLayers) {
                if (layer < 0 || layer >= sd3.layers) {
                    throw new ConfigException(c.file() + ": dual_attention_layers names block " + layer + " but there are "
                            + sd3.layers + " (num_layers)");
                }
            }
            return sd3;
        }
    }
}
