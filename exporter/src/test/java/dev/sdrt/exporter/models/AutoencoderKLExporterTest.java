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
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class AutoencoderKLExporterTest {
    private static final String FIXTURE = "tiny_vae_decoder";
    /** Parameter counts of the SD / SDXL VAE (the same architecture): decoder with post_quant_conv, encoder with quant_conv. */
    private static final long SD_DECODER_PARAMETERS = 49_490_199L;
    private static final long SD_ENCODER_PARAMETERS = 34_163_664L;

    @TempDir
    Path dir;

    @Test
    void decoderMatchesDiffusersInFloat32() throws Exception {
        FixtureCase c = FixtureCase.named(FIXTURE);
        try (TensorSource source = SafetensorsFinder.open(c.folder())) {
            Weights weights = new CheckpointWeights(source, FIXTURE);
            OnnxModel model = AutoencoderKLExporter.exportDecoder(DiffusersConfig.load(c.folder()), weights,
                    ExportOptions.defaults());
            // the checkpoint holds the whole autoencoder; the decoder graph must use everything but the encoder's part
            assertThat(weights.unused()).isNotEmpty()
                    .allMatch(name -> name.startsWith("encoder.") || name.startsWith("quant_conv."));

            Map<String, Tensor> out = ExportTesting.run(model, dir, c.inputs());
            System.out.printf("%s fp32: max rel diff %.3g%n", FIXTURE,
                    Tensors.maxRelDiff(out.get("sample"), c.expected().get("sample")));
            c.assertOutputsMatch(out, FixtureCase.FP32_TOLERANCE);
        }
    }

    @Test
    void decoderInFloat16StaysCloseToTheFloat32Reference() throws Exception {
        FixtureCase c = FixtureCase.named(FIXTURE);
        try (TensorSource source = SafetensorsFinder.open(c.folder())) {
            OnnxModel model = AutoencoderKLExporter.exportDecoder(DiffusersConfig.load(c.folder()),
                    new CheckpointWeights(source, FIXTURE), ExportOptions.defaults().withPrecision(DataType.FLOAT16));

            Map<String, Tensor> out = ExportTesting.run(model, dir, ExportTesting.toFloat16(c.inputs(), Set.of()));
            double rel = Tensors.maxRelDiff(out.get("sample"), c.expected().get("sample"));
            System.out.printf("%s fp16: max rel diff %.3g%n", FIXTURE, rel);
            assertThat(out.get("sample").dtype()).isEqualTo(DType.FLOAT16);
            assertThat(rel).isLessThanOrEqualTo(1e-2);
        }
    }

    /** With no reference output for the encoder, its structure is checked against the checkpoint's encoder tensors. */
    @Test
    void encoderUsesExactlyTheCheckpointsEncoderTensors() throws Exception {
        Path folder = FixtureCase.named(FIXTURE).folder();
        DiffusersConfig config = DiffusersConfig.load(folder);
        try (TensorSource source = SafetensorsFinder.open(folder)) {
            Map<String, Long> encoderTensors = new TreeMap<>();
            for (String name : source.names()) {
                if (name.startsWith("encoder.") || name.startsWith("quant_conv.")) {
                    encoderTensors.put(name, source.tensor(name).elementCount());
                }
            }
            Weights random = new RandomWeights(0);
            AutoencoderKLExporter.exportEncoder(config, random, ExportOptions.defaults());
            assertThat(new TreeMap<>(random.used())).isEqualTo(encoderTensors);

            Weights checkpoint = new CheckpointWeights(source, FIXTURE);
            AutoencoderKLExporter.exportDecoder(config, checkpoint, ExportOptions.defaults());
            AutoencoderKLExporter.exportEncoder(config, checkpoint, ExportOptions.defaults());
            assertThat(checkpoint.unused()).as("tensors neither graph uses").isEmpty();
        }
    }

    @Test
    void encoderWithRandomWeightsGivesFiniteLatentsOfTheRightShape() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(FixtureCase.named(FIXTURE).folder());
        OnnxModel model = AutoencoderKLExporter.exportEncoder(config, new RandomWeights(7), ExportOptions.defaults());
        assertThat(model.graph().outputs().get(0).name()).isEqualTo("latent");

        Tensor image = randomImage(2, 3, 24, 40);
        Tensor latent = ExportTesting.run(model, dir, Map.of("sample", image)).get("latent");
        // two blocks: one stride-2 downsampling
        assertThat(latent.shape()).containsExactly(2, 4, 12, 20);
        double maxAbs = 0;
        for (float v : latent.toFloatArray()) {
            assertThat(Float.isFinite(v)).as("latent value %s", v).isTrue();
            maxAbs = Math.max(maxAbs, Math.abs(v));
        }
        assertThat(maxAbs).isGreaterThan(0);
    }

    @ParameterizedTest
    @ValueSource(strings = {"sd15", "sd21", "sdxl"})
    void fullSizeParameterCounts(String model) {
        DiffusersConfig config = ExportTesting.arch(model, "vae");
        Weights decoder = new RandomWeights(0);
        AutoencoderKLExporter.exportDecoder(config, decoder, ExportOptions.defaults());
        assertThat(decoder.parameterCount()).isEqualTo(SD_DECODER_PARAMETERS);
        Weights encoder = new RandomWeights(0);
        AutoencoderKLExporter.exportEncoder(config, encoder, ExportOptions.defaults());
        assertThat(encoder.parameterCount()).isEqualTo(SD_ENCODER_PARAMETERS);
    }

    /**
     * SD3's VAE is the SD one with 16 latent channels and neither quant_conv nor post_quant_conv: the decoder's
     * conv_in reads 16 channels instead of 4 (+55,296), the encoder's conv_out writes 32 moments instead of 8
     * (+110,616), and the 1x1 convs (20 and 72 parameters) are gone.
     */
    @Test
    void sd3MediumParameterCounts() {
        DiffusersConfig config = ExportTesting.arch("sd3-medium", "vae");
        Weights decoder = new RandomWeights(0);
        AutoencoderKLExporter.exportDecoder(config, decoder, ExportOptions.defaults());
        Weights encoder = new RandomWeights(0);
        AutoencoderKLExporter.exportEncoder(config, encoder, ExportOptions.defaults());
        assertThat(decoder.used()).containsKey("decoder.conv_in.weight").doesNotContainKey("post_quant_conv.weight");
        assertThat(encoder.used()).containsKey("encoder.conv_out.weight").doesNotContainKey("quant_conv.weight");
        assertThat(decoder.parameterCount()).isEqualTo(SD_DECODER_PARAMETERS + 55_296 - 20);
        assertThat(encoder.parameterCount()).isEqualTo(SD_ENCODER_PARAMETERS + 110_616 - 72);
    }

    @Test
    void unknownUpBlockTypeNamesKeyAndValue() throws Exception {
        DiffusersConfig config = ExportTesting.withSetting(FixtureCase.named(FIXTURE).folder(), dir, "up_block_types",
                "[\"UpDecoderBlock2D\", \"AttnUpDecoderBlock2D\"]");
        assertThatThrownBy(() -> AutoencoderKLExporter.exportDecoder(config, new RandomWeights(0), ExportOptions.defaults()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("up_block_types[1] = \"AttnUpDecoderBlock2D\" is not supported")
                .hasMessageContaining("UpDecoderBlock2D");
    }

    private static Tensor randomImage(long... shape) {
        Random random = new Random(3);
        float[] values = new float[(int) Tensor.numElements(shape)];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextFloat() * 2 - 1;
        }
        return Tensor.ofFloats(shape, values);
    }
}
