package dev.sdrt.exporter.models;

import static dev.sdrt.exporter.models.ExportedModels.builtin;
import static dev.sdrt.exporter.models.ExportedModels.edited;
import static dev.sdrt.exporter.models.ExportedModels.saveAndRun;
import static dev.sdrt.exporter.models.ExportedModels.written;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.offset;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.safetensors.SafetensorsFinder;
import dev.sdrt.exporter.safetensors.TensorSource;
import dev.sdrt.exporter.weights.CheckpointWeights;
import dev.sdrt.exporter.weights.RandomWeights;
import dev.sdrt.exporter.weights.WeightsException;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClipTextExporterTest {
    private static final FixtureCase FIXTURE = FixtureCase.named("tiny_clip_text");

    @TempDir
    Path dir;

    @Test
    void matchesTransformersOnTheFixtureInFp32AndFp16() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(FIXTURE.folder());
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            CheckpointWeights weights = new CheckpointWeights(source, "tiny_clip_text");
            OnnxModel model = ClipTextExporter.export(config, weights, ExportOptions.defaults());
            assertThat(weights.unused()).as("checkpoint tensors the graph does not use").isEmpty();
            assertThat(model.graph().outputs()).extracting(Value::name).containsExactly("last_hidden_state", "pooler_output");

            Map<String, Tensor> fp32 = saveAndRun(model, dir, "fp32", FIXTURE.inputs());
            report("fp32", fp32);
            FIXTURE.assertOutputsMatch(fp32, FixtureCase.FP32_TOLERANCE);

            OnnxModel half = ClipTextExporter.export(config, new CheckpointWeights(source, "tiny_clip_text"),
                    ExportOptions.defaults().withPrecision(DataType.FLOAT16));
            Map<String, Tensor> fp16 = saveAndRun(half, dir, "fp16", FIXTURE.inputs());
            report("fp16", fp16);
            assertThat(fp16.get("last_hidden_state").dtype()).isEqualTo(DType.FLOAT16);
            FIXTURE.assertOutputsMatch(fp16, 1e-2);
        }
    }

    @Test
    void staticShapesUseAConstantMaskAndMatchToo() throws Exception {
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            OnnxModel model = ClipTextExporter.export(DiffusersConfig.load(FIXTURE.folder()),
                    new CheckpointWeights(source, "tiny_clip_text"), ExportOptions.defaults().withStaticShapes(1, 0, 0, 77));
            assertThat(model.graph().inputs().get(0).shape().toArray()).containsExactly(1, 77);
            FIXTURE.assertOutputsMatch(saveAndRun(model, dir, "static", FIXTURE.inputs()), FixtureCase.FP32_TOLERANCE);
        }
    }

    /** Causal attention: the first n positions of a longer text do not see what follows them. */
    @Test
    void shorterSequenceGivesThePrefixOfTheLongerOne() throws Exception {
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            OnnxModel model = ClipTextExporter.export(DiffusersConfig.load(FIXTURE.folder()),
                    new CheckpointWeights(source, "tiny_clip_text"), ExportOptions.defaults());
            long[] ids = FIXTURE.inputs().get("input_ids").toLongArray();
            int n = 10;
            Tensor prefix = Tensor.ofLongs(new long[] {1, n}, Arrays.copyOf(ids, n));
            Tensor got = saveAndRun(model, dir, "short", Map.of("input_ids", prefix)).get("last_hidden_state");

            float[] full = FIXTURE.expected().get("last_hidden_state").toFloatArray();
            Tensor expected = Tensor.ofFloats(new long[] {1, n, 32}, Arrays.copyOf(full, n * 32));
            assertThat(Tensors.maxRelDiff(got, expected)).isLessThanOrEqualTo(FixtureCase.FP32_TOLERANCE);
        }
    }

    /**
     * hidden_states[-2] is what enters the last layer: passed through final_layer_norm, it is the
     * last_hidden_state of the same model cut one layer shorter.
     */
    @Test
    void penultimateOutputIsTheInputOfTheLastLayer() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(FIXTURE.folder());
        DiffusersConfig shorter = edited(FIXTURE.folder(), dir.resolve("four_layers"), j -> j.addProperty("num_hidden_layers", 4));
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            OnnxModel model = ClipTextExporter.export(config, new CheckpointWeights(source, "ckpt"),
                    ExportOptions.defaults().withPenultimateHiddenState(true));
            Tensor penultimate = saveAndRun(model, dir, "full", FIXTURE.inputs()).get("hidden_states_penultimate");
            OnnxModel cut = ClipTextExporter.export(shorter, new CheckpointWeights(source, "ckpt"), ExportOptions.defaults());
            Tensor expected = saveAndRun(cut, dir, "cut", FIXTURE.inputs()).get("last_hidden_state");

            float[] gamma = source.tensor("final_layer_norm.weight").toFloatArray();
            float[] beta = source.tensor("final_layer_norm.bias").toFloatArray();
            Tensor normed = Tensor.ofFloats(penultimate.shape(), layerNorm(penultimate.toFloatArray(), gamma, beta, 1e-5));
            assertThat(Tensors.maxRelDiff(normed, expected)).isLessThanOrEqualTo(1e-5);
        }
    }

    @Test
    void withProjectionPoolsAtTheFirstEosTokenAndProjects() throws Exception {
        // eos_token_id 500 (not the legacy 2): pooling takes the first 500, not the largest id
        DiffusersConfig config = written(dir.resolve("cfg"), """
                {"architectures": ["CLIPTextModelWithProjection"], "hidden_size": 32, "intermediate_size": 37,
                 "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 1000, "max_position_embeddings": 16,
                 "hidden_act": "gelu", "eos_token_id": 500, "projection_dim": 16}""");
        RandomWeights weights = new RandomWeights(7);
        OnnxModel model = ClipTextExporter.export(config, weights, ExportOptions.defaults());
        assertThat(model.graph().outputs()).extracting(Value::name)
                .containsExactly("last_hidden_state", "pooler_output", "text_embeds", "hidden_states_penultimate");
        assertThat(weights.used()).containsKeys("text_model.embeddings.token_embedding.weight", "text_projection.weight");

        long[] ids = {
            0, 900, 500, 7, 500, 1, 1, 1, // first eos at 2, largest id at 1
            0, 3, 4, 5, 6, 500, 999, 1}; // first eos at 5, largest id at 6
        Map<String, Tensor> out = saveAndRun(model, dir, "proj", Map.of("input_ids", Tensor.ofLongs(new long[] {2, 8}, ids)));

        assertThat(out.get("last_hidden_state").shape()).containsExactly(2, 8, 32);
        assertThat(out.get("hidden_states_penultimate").shape()).containsExactly(2, 8, 32);
        assertThat(out.get("pooler_output").shape()).containsExactly(2, 32);
        assertThat(out.get("text_embeds").shape()).containsExactly(2, 16);
        for (Tensor t : out.values()) {
            for (float v : t.toFloatArray()) {
                assertThat(Float.isFinite(v)).isTrue();
            }
        }
        float[] hidden = out.get("last_hidden_state").toFloatArray();
        float[] pooled = out.get("pooler_output").toFloatArray();
        assertThat(Arrays.copyOfRange(pooled, 0, 32)).containsExactly(Arrays.copyOfRange(hidden, 2 * 32, 3 * 32));
        assertThat(Arrays.copyOfRange(pooled, 32, 64)).containsExactly(Arrays.copyOfRange(hidden, (8 + 5) * 32, (8 + 6) * 32));

        // text_embeds = pooled @ text_projection.weight^T (the graph keeps the weight transposed: [32, 16])
        float[] projection = model.graph().requireValue("text_projection.weight").constant().toFloats();
        float[] embeds = out.get("text_embeds").toFloatArray();
        for (int row = 0; row < 2; row++) {
            for (int j = 0; j < 16; j++) {
                double sum = 0;
                for (int i = 0; i < 32; i++) {
                    sum += pooled[row * 32 + i] * projection[i * 16 + j];
                }
                assertThat(embeds[row * 16 + j]).isCloseTo((float) sum, offset(1e-4f));
            }
        }
    }

    @Test
    void legacyEosPoolsAtTheLargestTokenId() throws Exception {
        // the fixture's config carries eos_token_id 2
        OnnxModel model = ClipTextExporter.export(DiffusersConfig.load(FIXTURE.folder()), new RandomWeights(3),
                ExportOptions.defaults());
        long[] ids = {0, 5, 2, 999, 2, 1};
        Map<String, Tensor> out = saveAndRun(model, dir, "legacy", Map.of("input_ids", Tensor.ofLongs(new long[] {1, 6}, ids)));
        float[] hidden = out.get("last_hidden_state").toFloatArray();
        assertThat(out.get("pooler_output").toFloatArray()).containsExactly(Arrays.copyOfRange(hidden, 3 * 32, 4 * 32));
    }

    @Test
    void fullSizeParameterCounts() throws Exception {
        assertThat(parameters("sd15/text_encoder.json")).isEqualTo(123_060_480L);
        assertThat(parameters("sdxl/text_encoder.json")).isEqualTo(123_060_480L);
        assertThat(parameters("sd21/text_encoder.json")).isEqualTo(340_387_840L);
        assertThat(parameters("sdxl/text_encoder_2.json")).isEqualTo(694_659_840L);
        // SD3's CLIP-L carries a text_projection (768 x 768) that SD 1.x's and SDXL's first encoder lack
        assertThat(parameters("sd3-medium/text_encoder.json")).isEqualTo(123_060_480L + 768 * 768);
        assertThat(parameters("sd3-medium/text_encoder_2.json")).isEqualTo(694_659_840L);
    }

    private static long parameters(String builtinConfig) throws Exception {
        RandomWeights weights = new RandomWeights(0);
        ClipTextExporter.export(builtin(builtinConfig), weights, ExportOptions.defaults());
        return weights.parameterCount();
    }

    @Test
    void wrongShapedTensorIsReported() throws Exception {
        DiffusersConfig config = edited(FIXTURE.folder(), dir.resolve("cfg"), j -> j.addProperty("intermediate_size", 40));
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            assertThatThrownBy(() -> ClipTextExporter.export(config, new CheckpointWeights(source, "tiny_clip_text"),
                    ExportOptions.defaults()))
                    .isInstanceOf(WeightsException.class)
                    .hasMessageContaining("encoder.layers.0.mlp.fc1.weight")
                    .hasMessageContaining("[37, 32]").hasMessageContaining("[40, 32]");
        }
    }

    @Test
    void missingTensorIsReported() throws Exception {
        DiffusersConfig config = edited(FIXTURE.folder(), dir.resolve("cfg"), j -> j.addProperty("num_hidden_layers", 6));
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            assertThatThrownBy(() -> ClipTextExporter.export(config, new CheckpointWeights(source, "tiny_clip_text"),
                    ExportOptions.defaults()))
                    .isInstanceOf(WeightsException.class)
                    .hasMessageContaining("has no tensor 'encoder.layers.5.layer_norm1.weight'");
        }
    }

    @Test
    void unsupportedConfigsAreRejected() throws Exception {
        DiffusersConfig act = edited(FIXTURE.folder(), dir.resolve("act"), j -> j.addProperty("hidden_act", "swiglu"));
        assertThatThrownBy(() -> ClipTextExporter.export(act, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("hidden_act 'swiglu' is not supported").hasMessageContaining("quick_gelu");

        DiffusersConfig heads = edited(FIXTURE.folder(), dir.resolve("heads"), j -> j.addProperty("num_attention_heads", 5));
        assertThatThrownBy(() -> ClipTextExporter.export(heads, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("divisible by num_attention_heads");

        DiffusersConfig vision = edited(FIXTURE.folder(), dir.resolve("vision"), j -> {
            j.remove("architectures");
            j.addProperty("_class_name", "CLIPVisionModel");
        });
        assertThatThrownBy(() -> ClipTextExporter.export(vision, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'CLIPVisionModel' is not a CLIP text encoder");

        assertThatThrownBy(() -> ClipTextExporter.export(DiffusersConfig.load(FIXTURE.folder()), new RandomWeights(0),
                ExportOptions.defaults().withStaticShapes(1, 0, 0, 100)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("exceeds the 77 positions");
    }

    private static float[] layerNorm(float[] x, float[] gamma, float[] beta, double eps) {
        int d = gamma.length;
        float[] out = new float[x.length];
        for (int row = 0; row < x.length / d; row++) {
            double mean = 0;
            for (int i = 0; i < d; i++) {
                mean += x[row * d + i];
            }
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) {
                double c = x[row * d + i] - mean;
                var += c * c;
            }
            var /= d;
            for (int i = 0; i < d; i++) {
                out[row * d + i] = (float) ((x[row * d + i] - mean) / Math.sqrt(var + eps) * gamma[i] + beta[i]);
            }
        }
        return out;
    }

    private static void report(String label, Map<String, Tensor> outputs) {
        for (var e : FIXTURE.expected().entrySet()) {
            System.out.printf("tiny_clip_text %s %s: max rel diff %.3g%n", label, e.getKey(),
                    Tensors.maxRelDiff(outputs.get(e.getKey()), e.getValue()));
        }
    }
}
