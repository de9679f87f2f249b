package dev.sdrt.exporter.models;

import static dev.sdrt.exporter.models.ExportedModels.builtin;
import static dev.sdrt.exporter.models.ExportedModels.edited;
import static dev.sdrt.exporter.models.ExportedModels.saveAndRun;
import static dev.sdrt.exporter.models.ExportedModels.written;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.safetensors.SafeTensor;
import dev.sdrt.exporter.safetensors.SafetensorsFinder;
import dev.sdrt.exporter.safetensors.TensorSource;
import dev.sdrt.exporter.weights.CheckpointWeights;
import dev.sdrt.exporter.weights.RandomWeights;
import dev.sdrt.exporter.weights.WeightsException;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Sd3TransformerExporterTest {
    private static final FixtureCase FIXTURE = FixtureCase.named("tiny_sd3_transformer");
    private static final String POS_EMBED = "pos_embed.pos_embed";

    @TempDir
    Path dir;

    @Test
    void matchesDiffusersOnTheFixtureInFp32AndFp16() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(FIXTURE.folder());
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            CheckpointWeights weights = new CheckpointWeights(source, "tiny_sd3_transformer");
            OnnxModel model = Sd3TransformerExporter.export(config, weights, ExportOptions.defaults());
            assertThat(weights.unused()).as("checkpoint tensors the graph does not use").isEmpty();

            Map<String, Tensor> fp32 = saveAndRun(model, dir, "fp32", FIXTURE.inputs());
            report("fp32", fp32);
            FIXTURE.assertOutputsMatch(fp32, FixtureCase.FP32_TOLERANCE);

            OnnxModel half = Sd3TransformerExporter.export(config, new CheckpointWeights(source, "tiny_sd3_transformer"),
                    ExportOptions.defaults().withPrecision(DataType.FLOAT16));
            Map<String, Tensor> halfInputs = new LinkedHashMap<>();
            // the timestep input stays float32 in every precision
            FIXTURE.inputs().forEach((name, t) -> halfInputs.put(name, name.equals("timestep") ? t : t.castTo(DType.FLOAT16)));
            Map<String, Tensor> fp16 = saveAndRun(half, dir, "fp16", halfInputs);
            report("fp16", fp16);
            assertThat(fp16.get("sample").dtype()).isEqualTo(DType.FLOAT16);
            FIXTURE.assertOutputsMatch(fp16, 1e-2);
        }
    }

    @Test
    void staticShapesMatchToo() throws Exception {
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            OnnxModel model = Sd3TransformerExporter.export(DiffusersConfig.load(FIXTURE.folder()),
                    new CheckpointWeights(source, "ckpt"), ExportOptions.defaults().withStaticShapes(2, 16, 16, 12));
            assertThat(model.graph().inputs().get(0).shape().toArray()).containsExactly(2, 4, 16, 16);
            FIXTURE.assertOutputsMatch(saveAndRun(model, dir, "static", FIXTURE.inputs()), FixtureCase.FP32_TOLERANCE);
        }
    }

    /** diffusers stores the sin-cos table in the checkpoint; computed here it must be the same table. */
    @Test
    void computedPositionTableEqualsTheStoredOne() throws Exception {
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            float[] stored = source.tensor(POS_EMBED).toFloatArray();
            // pos_embed_max_size 96, base size = sample_size / patch_size = 8
            float[] computed = Sd3TransformerExporter.sinCosTable(32, 96, 8);
            assertThat(computed).hasSameSizeAs(stored);
            double maxDiff = 0;
            for (int i = 0; i < stored.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(stored[i] - computed[i]));
            }
            assertThat(maxDiff).isLessThanOrEqualTo(1e-6);
        }
    }

    @Test
    void checkpointWithoutThePositionTableStillMatches() throws Exception {
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            CheckpointWeights weights = new CheckpointWeights(without(source, POS_EMBED), "ckpt");
            OnnxModel model = Sd3TransformerExporter.export(DiffusersConfig.load(FIXTURE.folder()), weights, ExportOptions.defaults());
            assertThat(weights.unused()).isEmpty();
            assertThat(weights.used()).doesNotContainKey(POS_EMBED);
            FIXTURE.assertOutputsMatch(saveAndRun(model, dir, "computed", FIXTURE.inputs()), FixtureCase.FP32_TOLERANCE);
        }
    }

    @Test
    void sd3MediumParameterCount() throws Exception {
        RandomWeights weights = new RandomWeights(0);
        OnnxModel model = Sd3TransformerExporter.export(builtin("sd3-medium/transformer.json"), weights, ExportOptions.defaults());
        assertThat(weights.parameterCount()).isEqualTo(2_028_328_000L);
        // the computed position table is a constant of 192 x 192 positions, not a parameter
        assertThat(model.graph().requireValue(POS_EMBED).constant().dims()).containsExactly(1, 192 * 192, 1536);
        assertThat(weights.used()).containsKeys("transformer_blocks.23.attn.add_q_proj.weight", "norm_out.linear.weight")
                .doesNotContainKeys("transformer_blocks.23.attn.to_add_out.weight", "transformer_blocks.23.ff_context.net.2.weight");
    }

    /** SD3.5 features: dual attention blocks and RMS qk-norm, on a non-square latent smaller than sample_size. */
    @Test
    void dualAttentionAndQkNormRun() throws Exception {
        DiffusersConfig config = written(dir.resolve("cfg"), """
                {"_class_name": "SD3Transformer2DModel", "sample_size": 16, "patch_size": 2, "in_channels": 4,
                 "out_channels": 4, "num_layers": 3, "attention_head_dim": 8, "num_attention_heads": 4,
                 "joint_attention_dim": 24, "caption_projection_dim": 32, "pooled_projection_dim": 40,
                 "pos_embed_max_size": 16, "dual_attention_layers": [0, 1], "qk_norm": "rms_norm"}""");
        RandomWeights weights = new RandomWeights(11);
        OnnxModel model = Sd3TransformerExporter.export(config, weights, ExportOptions.defaults());
        assertThat(weights.used()).containsKeys("transformer_blocks.0.attn2.to_q.weight",
                "transformer_blocks.1.attn2.norm_k.weight", "transformer_blocks.2.attn.norm_added_q.weight")
                .doesNotContainKey("transformer_blocks.2.attn2.to_q.weight");
        assertThat(weights.used().get("transformer_blocks.0.norm1.linear.weight")).isEqualTo(9 * 32 * 32L);
        assertThat(weights.used().get("transformer_blocks.2.norm1.linear.weight")).isEqualTo(6 * 32 * 32L);

        Map<String, Tensor> inputs = Map.of(
                "hidden_states", random(1, 4, 8, 12),
                "encoder_hidden_states", random(1, 5, 24),
                "pooled_projections", random(1, 40),
                "timestep", Tensor.ofFloats(new long[] {1}, new float[] {500}));
        Tensor sample = saveAndRun(model, dir, "dual", inputs).get("sample");
        assertThat(sample.shape()).containsExactly(1, 4, 8, 12);
        for (float v : sample.toFloatArray()) {
            assertThat(Float.isFinite(v)).isTrue();
        }
    }

    @Test
    void wrongShapedTensorIsReported() throws Exception {
        // with 3 layers, block 1 is no longer the last: its norm1_context is an AdaLayerNormZero (6 chunks, not 2)
        DiffusersConfig config = edited(FIXTURE.folder(), dir.resolve("cfg"), j -> j.addProperty("num_layers", 3));
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            assertThatThrownBy(() -> Sd3TransformerExporter.export(config, new CheckpointWeights(source, "ckpt"),
                    ExportOptions.defaults()))
                    .isInstanceOf(WeightsException.class)
                    .hasMessageContaining("transformer_blocks.1.norm1_context.linear.weight")
                    .hasMessageContaining("[64, 32]").hasMessageContaining("[192, 32]");
        }
    }

    @Test
    void missingTensorIsReported() throws Exception {
        DiffusersConfig config = edited(FIXTURE.folder(), dir.resolve("cfg"), j -> j.addProperty("qk_norm", "rms_norm"));
        try (TensorSource source = SafetensorsFinder.open(FIXTURE.folder())) {
            assertThatThrownBy(() -> Sd3TransformerExporter.export(config, new CheckpointWeights(source, "ckpt"),
                    ExportOptions.defaults()))
                    .isInstanceOf(WeightsException.class)
                    .hasMessageContaining("has no tensor 'transformer_blocks.0.attn.norm_q.weight'");
        }
    }

    @Test
    void unsupportedConfigsAreRejected() throws Exception {
        DiffusersConfig qkNorm = edited(FIXTURE.folder(), dir.resolve("qk"), j -> j.addProperty("qk_norm", "layer_norm"));
        assertThatThrownBy(() -> Sd3TransformerExporter.export(qkNorm, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("qk_norm 'layer_norm' is not supported");

        DiffusersConfig caption = edited(FIXTURE.folder(), dir.resolve("cap"), j -> j.addProperty("caption_projection_dim", 48));
        assertThatThrownBy(() -> Sd3TransformerExporter.export(caption, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("caption_projection_dim 48 must equal");

        DiffusersConfig dual = edited(FIXTURE.folder(), dir.resolve("dual"), j -> {
            j.remove("dual_attention_layers");
            j.add("dual_attention_layers", new com.google.gson.JsonParser().parse("[5]"));
        });
        assertThatThrownBy(() -> Sd3TransformerExporter.export(dual, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("dual_attention_layers names block 5");

        DiffusersConfig unet = DiffusersConfig.load(FixtureCase.named("tiny_sd_unet").folder());
        assertThatThrownBy(() -> Sd3TransformerExporter.export(unet, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'UNet2DConditionModel' is not an SD3 transformer");

        assertThatThrownBy(() -> Sd3TransformerExporter.export(DiffusersConfig.load(FIXTURE.folder()), new RandomWeights(0),
                ExportOptions.defaults().withStaticShapes(1, 15, 16, 12)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of patch_size 2");
    }

    /** {@code source} without the tensor {@code hidden}, like a checkpoint saved without that buffer. */
    private static TensorSource without(TensorSource source, String hidden) {
        return new TensorSource() {
            @Override
            public List<String> names() {
                return source.names().stream().filter(n -> !n.equals(hidden)).toList();
            }

            @Override
            public boolean contains(String name) {
                return !name.equals(hidden) && source.contains(name);
            }

            @Override
            public SafeTensor tensor(String name) throws IOException {
                return source.tensor(name);
            }

            @Override
            public void close() {
            }
        };
    }

    private static Tensor random(long... shape) {
        SplittableRandom rnd = new SplittableRandom(5);
        float[] v = new float[(int) Tensor.numElements(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return Tensor.ofFloats(shape, v);
    }

    private static void report(String label, Map<String, Tensor> outputs) {
        System.out.printf("tiny_sd3_transformer %s sample: max rel diff %.3g%n", label,
                Tensors.maxRelDiff(outputs.get("sample"), FIXTURE.expected().get("sample")));
    }
}
