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
import dev.sdrt.graphs.ir.Value;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The text encoder of Stable Diffusion: transformers' {@code CLIPTextModel} and {@code
 * CLIPTextModelWithProjection}, as ONNX.
 *
 * <p>Input {@code input_ids} [batch, sequence] int64. Outputs:
 * <ul>
 *   <li>{@code last_hidden_state} [batch, sequence, hidden]: after {@code final_layer_norm};
 *   <li>{@code pooler_output} [batch, hidden]: {@code last_hidden_state} at the end-of-text token of each row
 *       (transformers' rule: with the legacy {@code eos_token_id} 2 that original CLIP configs carry, the position
 *       of the largest token id, which is the EOT token 49407; otherwise the first position holding {@code
 *       eos_token_id});
 *   <li>{@code text_embeds} [batch, projection_dim]: {@code text_projection} of the pooled output (only for
 *       {@code CLIPTextModelWithProjection});
 *   <li>{@code hidden_states_penultimate} [batch, sequence, hidden] (for {@code CLIPTextModelWithProjection}, or
 *       when {@link ExportOptions#penultimateHiddenState()} is set): transformers' {@code hidden_states[-2]}, the
 *       input of the last encoder layer, without {@code final_layer_norm}. SDXL and SD3 condition their denoiser
 *       on this tensor from both of their CLIP text encoders.
 * </ul>
 *
 * <p>Parameter names are the checkpoint's: {@code text_model.embeddings.token_embedding.weight}, ... and
 * {@code text_projection.weight}. Checkpoints written by newer transformers versions store a plain {@code
 * CLIPTextModel} without the {@code text_model.} prefix; the prefix is used exactly when the checkpoint has it
 * (random weights get it). The {@code position_ids} buffer that older checkpoints carry is not read: it is
 * always 0..max_position_embeddings-1.
 */
public final class ClipTextExporter {
    private static final String WITH_PROJECTION = "CLIPTextModelWithProjection";
    private static final Set<String> PLAIN = Set.of("CLIPTextModel", "clip_text_model");
    /**
     * transformers' hidden_act names and the GraphBuilder activation each means: "gelu" is exact, "gelu_new" and
     * "gelu_pytorch_tanh" are the tanh approximation.
     */
    private static final Map<String, String> ACTIVATIONS = Map.of("quick_gelu", "quick_gelu", "gelu", "gelu",
            "gelu_new", "gelu_pytorch_tanh", "gelu_pytorch_tanh", "gelu_pytorch_tanh", "relu", "relu");
    /** The eos_token_id of the original CLIP configs, for which transformers pools at the largest token id. */
    private static final int LEGACY_EOS_TOKEN_ID = 2;

    private final ClipConfig config;
    private final ExportOptions options;
    private final GraphBuilder b;

    private ClipTextExporter(ClipConfig config, Weights weights, ExportOptions options) {
        this.config = config;
        this.options = options;
        this.b = new GraphBuilder(config.withProjection ? "clip_text_model_with_projection" : "clip_text_model",
                weights, options.precision());
    }

    /**
     * Exports the text encoder described by {@code config}, with the {@code hidden_states_penultimate} output for
     * {@code CLIPTextModelWithProjection} (SDXL's second text encoder, both of SD3's) or when {@link
     * ExportOptions#penultimateHiddenState()} asks for it (SDXL's first text encoder, a plain CLIPTextModel).
     */
    public static OnnxModel export(DiffusersConfig config, Weights weights, ExportOptions options) {
        ClipConfig clip = ClipConfig.read(config);
        return new ClipTextExporter(clip, weights, options).build(clip.withProjection || options.penultimateHiddenState());
    }

    private OnnxModel build(boolean penultimateOutput) {
        if (options.staticShapes() && options.sequenceLength() > config.maxPositions) {
            throw new IllegalArgumentException("sequence length " + options.sequenceLength() + " exceeds the "
                    + config.maxPositions + " positions of the text encoder (max_position_embeddings)");
        }
        DataType dtype = b.dtype();
        Object batch = options.batchDim();
        Object sequence = options.sequenceDim();
        Value ids = b.input("input_ids", DataType.INT64, batch, sequence);

        Value lastHidden;
        Value penultimate;
        try (Scope s = textModelScope()) {
            Value sequenceLength = options.staticShapes() ? b.longs(options.sequenceLength())
                    : b.op("Slice", b.shapeOf(ids), b.longs(1), b.longs(2));
            Value hidden = embeddings(ids, sequenceLength);
            Value mask = causalMask(sequenceLength);
            try (Scope e = b.scope("encoder")) {
                for (int i = 0; i < config.layers - 1; i++) {
                    hidden = encoderLayer(i, hidden, mask);
                }
                // transformers' hidden_states[-2]: what enters the last layer
                penultimate = hidden;
                hidden = encoderLayer(config.layers - 1, hidden, mask);
            }
            lastHidden = b.layerNorm("final_layer_norm", hidden, config.hidden, config.layerNormEps, true, true);
        }
        Value pooled = pool(lastHidden, ids);

        b.output("last_hidden_state", lastHidden, dtype, batch, sequence, config.hidden);
        b.output("pooler_output", pooled, dtype, batch, config.hidden);
        if (config.withProjection) {
            Value textEmbeds = b.linear("text_projection", pooled, config.hidden, config.projectionDim, false);
            b.output("text_embeds", textEmbeds, dtype, batch, config.projectionDim);
        }
        if (penultimateOutput) {
            b.output("hidden_states_penultimate", penultimate, dtype, batch, sequence, config.hidden);
        }
        return b.toModel();
    }

    /** The {@code text_model} module, or none when the checkpoint stores its tensors without that prefix. */
    private Scope textModelScope() {
        List<String> checkpointNames = b.weights().unused();
        boolean checkpointWithoutPrefix = !checkpointNames.isEmpty()
                && checkpointNames.stream().noneMatch(n -> n.startsWith("text_model."));
        return checkpointWithoutPrefix ? () -> { } : b.scope("text_model");
    }

    /** Token embedding plus the position embedding of positions 0..sequence-1. */
    private Value embeddings(Value ids, Value sequenceLength) {
        try (Scope s = b.scope("embeddings")) {
            Value tokens = b.embedding("token_embedding", ids, config.vocabSize, config.hidden);
            Value positions;
            try (Scope p = b.scope("position_embedding")) {
                Value table = b.param("weight", Init.EMBEDDING, config.maxPositions, config.hidden);
                positions = b.op("Slice", table, b.longs(0), sequenceLength, b.longs(0));
            }
            return b.add(tokens, positions);
        }
    }

    /** 0..max_position_embeddings-1, transformers' position_ids buffer. */
    private Value positionIds() {
        long[] ids = new long[config.maxPositions];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i;
        }
        return b.longs(ids);
    }

    /**
     * The causal mask [sequence, sequence]: 0 on and below the diagonal, the export type's lowest finite value
     * above it, as transformers builds it (finite, so that a rewrite scaling the mask can never make NaN).
     * A constant for static shapes, else computed from the sequence length.
     */
    private Value causalMask(Value sequenceLength) {
        float blocked = lowestFinite(b.dtype());
        if (options.staticShapes()) {
            int n = (int) options.sequenceLength();
            float[] mask = new float[n * n];
            for (int row = 0; row < n; row++) {
                for (int col = row + 1; col < n; col++) {
                    mask[row * n + col] = blocked;
                }
            }
            return b.floats("causal_mask", new long[] {n, n}, mask);
        }
        Value positions = b.op("Slice", positionIds(), b.longs(0), sequenceLength, b.longs(0));
        Value future = b.op("Greater", b.unsqueeze(positions, 0), b.unsqueeze(positions, 1));
        return b.op("Where", future, b.scalar(blocked), b.scalar(0));
    }

    private static float lowestFinite(DataType type) {
        return switch (type) {
            case FLOAT16 -> -65504f;
            // bfloat16's largest finite value; -Float.MAX_VALUE would round to -inf
            case BFLOAT16 -> -3.3895314e38f;
            default -> -Float.MAX_VALUE;
        };
    }

    /** Pre-norm transformer layer {@code index}: causal self-attention, then the MLP, each added to the residual. */
    private Value encoderLayer(int index, Value x, Value mask) {
        long d = config.hidden;
        try (Scope layer = b.scope("layers." + index)) {
            Value h = b.layerNorm("layer_norm1", x, d, config.layerNormEps, true, true);
            try (Scope s = b.scope("self_attn")) {
                Value q = b.linear("q_proj", h, d, d, true);
                Value k = b.linear("k_proj", h, d, d, true);
                Value v = b.linear("v_proj", h, d, d, true);
                h = b.attention(q, k, v, config.heads, d / config.heads, mask);
                h = b.linear("out_proj", h, d, d, true);
            }
            x = b.add(x, h);
            h = b.layerNorm("layer_norm2", x, d, config.layerNormEps, true, true);
            try (Scope s = b.scope("mlp")) {
                h = b.linear("fc1", h, d, config.intermediate, true);
                h = b.activation(ACTIVATIONS.get(config.hiddenAct), h);
                h = b.linear("fc2", h, config.intermediate, d, true);
            }
            return b.add(x, h);
        }
    }

    /** The final hidden state at each row's end-of-text position: [batch, sequence, hidden] -> [batch, hidden]. */
    private Value pool(Value lastHidden, Value ids) {
        try (Scope s = b.scope("pooler")) {
            // ArgMax over int32: TensorRT's ArgMax takes no int64, and token ids fit easily
            Value scores = config.eosTokenId == LEGACY_EOS_TOKEN_ID ? b.cast(ids, DataType.INT32)
                    : b.cast(b.op("Equal", ids, b.longs(config.eosTokenId)), DataType.INT32);
            // ArgMax returns the first maximal position, as torch.argmax does
            Value position = b.op("ArgMax", Map.of("axis", -1L, "keepdims", 1L), scores);
            return b.op("GatherND", Map.of("batch_dims", 1L), lastHidden, position);
        }
    }

    /** The config keys the graph depends on, with transformers' CLIPTextConfig defaults. */
    private record ClipConfig(boolean withProjection, int vocabSize, int hidden, int intermediate, int layers, int heads,
            int maxPositions, String hiddenAct, double layerNormEps, int eosTokenId, int projectionDim) {

        static ClipConfig read(DiffusersConfig c) {
            String cls = c.className();
            boolean withProjection = WITH_PROJECTION.equals(cls);
            if (!withProjection && !PLAIN.contains(cls)) {
                throw new ConfigException(c.file() + ": model class '" + abbreviate(cls) + "' is not a CLIP text"
                        + " encoder (expected CLIPTextModel or CLIPTextModelWithProjection)");
            }
            int vocabSize = c.size("vocab_size", 49408);
            ClipConfig clip = new ClipConfig(withProjection, vocabSize, c.size("hidden_size", 512),
                    c.size("intermediate_size", 2048), c.layerCount("num_hidden_layers", 12),
                    c.size("num_attention_heads", 8), c.size("max_position_embeddings", 77),
                    c.getString("hidden_act", "quick_gelu"), c.positiveNumber("layer_norm_eps", 1e-5),
                    c.getInt("eos_token_id", 49407),
                    // only CLIPTextModelWithProjection has the projection
                    withProjection ? c.size("projection_dim", 512) : 0);
            if (!ACTIVATIONS.containsKey(clip.hiddenAct)) {
                throw new ConfigException(c.file() + ": hidden_act '" + abbreviate(clip.hiddenAct) + "' is not supported;"
                        + " supported: " + ACTIVATIONS.keySet().stream().sorted().toList());
            }
            if (clip.hidden % clip.heads != 0) {
                throw new ConfigException(c.file() + ": hidden_size " + clip.hidden + " is not divisible by"
                        + " num_attention_heads " + clip.heads);
            }
            // pooling looks for this id among the input ids, so it must be a token of the vocabulary
            if (clip.eosTokenId < 0 || clip.eosTokenId >= vocabSize) {
                throw c.invalid("eos_token_id", clip.eosTokenId + (c.has("eos_token_id") ? "" : " (the default)"),
                        "a token id of the vocabulary, in [0, " + (vocabSize - 1) + "] (vocab_size " + vocabSize + ")");
            }
            return clip;
        }
    }
}
