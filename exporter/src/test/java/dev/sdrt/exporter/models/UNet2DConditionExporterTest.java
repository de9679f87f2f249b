package dev.sdrt.exporter.models;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.safetensors.SafetensorsFinder;
import dev.sdrt.exporter.safetensors.TensorSource;
import dev.sdrt.exporter.weights.CheckpointWeights;
import dev.sdrt.exporter.weights.RandomWeights;
import dev.sdrt.exporter.weights.Weights;
import dev.sdrt.exporter.weights.WeightsException;
import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class UNet2DConditionExporterTest {
    /** Inputs that stay float32 in a float16 export. */
    private static final Set<String> FLOAT32_INPUTS = Set.of("timestep", "time_ids");

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet"})
    void matchesDiffusersInFloat32(String fixture) throws Exception {
        FixtureCase c = FixtureCase.named(fixture);
        try (TensorSource source = SafetensorsFinder.open(c.folder())) {
            Weights weights = new CheckpointWeights(source, fixture);
            OnnxModel model = UNet2DConditionExporter.export(DiffusersConfig.load(c.folder()), weights,
                    ExportOptions.defaults());
            assertThat(weights.unused()).as("checkpoint tensors the graph does not use").isEmpty();

            Map<String, Tensor> out = ExportTesting.run(model, dir, c.inputs());
            System.out.printf("%s fp32: max rel diff %.3g%n", fixture,
                    Tensors.maxRelDiff(out.get("out_sample"), c.expected().get("out_sample")));
            c.assertOutputsMatch(out, FixtureCase.FP32_TOLERANCE);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet"})
    void float16ExportStaysCloseToTheFloat32Reference(String fixture) throws Exception {
        FixtureCase c = FixtureCase.named(fixture);
        try (TensorSource source = SafetensorsFinder.open(c.folder())) {
            OnnxModel model = UNet2DConditionExporter.export(DiffusersConfig.load(c.folder()),
                    new CheckpointWeights(source, fixture), ExportOptions.defaults().withPrecision(DataType.FLOAT16));

            Map<String, Tensor> out = ExportTesting.run(model, dir, ExportTesting.toFloat16(c.inputs(), FLOAT32_INPUTS));
            double rel = Tensors.maxRelDiff(out.get("out_sample"), c.expected().get("out_sample"));
            System.out.printf("%s fp16: max rel diff %.3g%n", fixture, rel);
            assertThat(out.get("out_sample").dtype()).isEqualTo(DType.FLOAT16);
            assertThat(rel).isLessThanOrEqualTo(1e-2);
        }
    }

    /** Parameter counts of the real checkpoints: any missing or extra layer changes them. */
    @ParameterizedTest
    @CsvSource({"sd15, 859520964", "sd21, 865910724", "sdxl, 2567463684"})
    void fullSizeParameterCounts(String model, long expected) {
        Weights weights = new RandomWeights(0);
        UNet2DConditionExporter.export(ExportTesting.arch(model, "unet"), weights, ExportOptions.defaults());
        assertThat(weights.parameterCount()).isEqualTo(expected);
    }

    /**
     * ONNX shape inference accepts the full-size graph and derives out_sample's channels through every conv, attention
     * and skip concatenation. OnnxChecker runs it without data propagation, so batch, height and width are lost
     * where a Reshape takes its target from a Shape (group norm, tokens back to NCHW) and are not checked here.
     */
    @Test
    void sd15GraphPassesShapeInferenceWithStaticShapes() {
        ExportOptions options = ExportOptions.defaults().withStaticShapes(2, 64, 64, 77);
        OnnxModel model = UNet2DConditionExporter.export(ExportTesting.arch("sd15", "unet"), new RandomWeights(0), options);
        Value out = model.graph().outputs().get(0);
        assertThat(out.name()).isEqualTo("out_sample");
        assertThat(out.shape()).isEqualTo(Shape.of(2, 4, 64, 64));
        // forget the declared shape, so that what is checked below is what inference derives
        out.setShape(null);
        OnnxChecker.inferShapes(model);
        assertThat(out.type()).isEqualTo(DataType.FLOAT);
        assertThat(out.shape().rank()).isEqualTo(4);
        assertThat(out.shape().dim(1)).isEqualTo(Dim.of(4));
    }

    @Test
    void unknownDownBlockTypeNamesKeyAndValue() throws Exception {
        DiffusersConfig config = ExportTesting.withSetting(FixtureCase.named("tiny_sd_unet").folder(), dir,
                "down_block_types", "[\"CrossAttnDownBlock2D\", \"SimpleCrossAttnDownBlock2D\"]");
        assertThatThrownBy(() -> UNet2DConditionExporter.export(config, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("down_block_types[1]")
                .hasMessageContaining("SimpleCrossAttnDownBlock2D")
                .hasMessageContaining("CrossAttnDownBlock2D, DownBlock2D");
    }

    @Test
    void unsupportedSettingNamesKeyAndValue() throws Exception {
        Path fixture = FixtureCase.named("tiny_sd_unet").folder();
        DiffusersConfig classEmbedding = ExportTesting.withSetting(fixture, dir, "class_embed_type", "\"timestep\"");
        assertThatThrownBy(() -> UNet2DConditionExporter.export(classEmbedding, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("class_embed_type = \"timestep\" is not supported");
        DiffusersConfig noMidBlock = ExportTesting.withSetting(fixture, dir, "mid_block_type", "null");
        assertThatThrownBy(() -> UNet2DConditionExporter.export(noMidBlock, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("mid_block_type = null");
    }

    @Test
    void checkpointMissingATensorIsNamed() throws Exception {
        Path fixture = FixtureCase.named("tiny_sd_unet").folder();
        String missing = "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight";
        try (TensorSource source = ExportTesting.without(SafetensorsFinder.open(fixture), Set.of(missing))) {
            Weights weights = new CheckpointWeights(source, "tiny_sd_unet");
            assertThatThrownBy(() -> UNet2DConditionExporter.export(DiffusersConfig.load(fixture), weights,
                    ExportOptions.defaults()))
                    .isInstanceOf(WeightsException.class)
                    .hasMessageContaining("no tensor '" + missing + "'")
                    .hasMessageContaining("[64, 32]");
        }
    }

    @Test
    void tensorOfTheWrongShapeIsNamed() throws Exception {
        Path fixture = FixtureCase.named("tiny_sd_unet").folder();
        // the checkpoint's cross-attention takes 32-wide text states; a config claiming 48 disagrees with to_k
        DiffusersConfig config = ExportTesting.withSetting(fixture, dir, "cross_attention_dim", "48");
        try (TensorSource source = SafetensorsFinder.open(fixture)) {
            Weights weights = new CheckpointWeights(source, "tiny_sd_unet");
            assertThatThrownBy(() -> UNet2DConditionExporter.export(config, weights, ExportOptions.defaults()))
                    .isInstanceOf(WeightsException.class)
                    .hasMessageContaining("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight")
                    .hasMessageContaining("has shape [32, 32] but the model config implies [32, 48]");
        }
    }
}
