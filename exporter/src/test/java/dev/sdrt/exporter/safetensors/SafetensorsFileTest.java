package dev.sdrt.exporter.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading the checkpoints that the Python safetensors library wrote for the fixtures. */
class SafetensorsFileTest {

    @Test
    void readsUnetFixture() throws Exception {
        try (SafetensorsFile file = SafetensorsFile.open(
                TestFixtures.folder("tiny_sd_unet").resolve("diffusion_pytorch_model.safetensors"))) {
            assertThat(file.names()).hasSize(304).isSorted().contains("conv_in.weight", "conv_out.bias");
            assertThat(file.metadata()).containsEntry("format", "pt");

            SafeTensor convIn = file.tensor("conv_in.weight");
            assertThat(convIn.dtype()).isEqualTo(SafeDType.F32);
            assertThat(convIn.shape()).containsExactly(32, 4, 3, 3);
            assertThat(convIn.elementCount()).isEqualTo(32 * 4 * 3 * 3);
            assertThat(convIn.byteSize()).isEqualTo(32 * 4 * 3 * 3 * 4);

            SafeTensor bias = file.tensor("conv_in.bias");
            assertThat(bias.shape()).containsExactly(32);
            // Values as numpy reads them from the same file.
            assertThat(bias.toFloatArray()).startsWith(0x1.4b89e6p-6f, -0x1.0c42a6p-5f, 0x1.5599eep-9f);
        }
    }

    @Test
    void readsEveryTensorOfEveryFixture() throws Exception {
        for (String fixture : List.of("tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_sd3_transformer",
                "tiny_clip_text")) {
            try (TensorSource source = SafetensorsFinder.open(TestFixtures.folder(fixture))) {
                assertThat(source.names()).as(fixture).isNotEmpty();
                for (String name : source.names()) {
                    SafeTensor tensor = source.tensor(name);
                    assertThat(tensor.dtype()).as(name).isEqualTo(SafeDType.F32);
                    assertThat(tensor.rank()).as(name).isBetween(1, 4);
                    float[] values = tensor.toFloatArray();
                    assertThat(values).as(name).hasSize((int) tensor.elementCount());
                    int nonFinite = 0;
                    for (float value : values) {
                        nonFinite += Float.isFinite(value) ? 0 : 1;
                    }
                    assertThat(nonFinite).as(name + ": non-finite values").isZero();
                }
            }
        }
    }

    @Test
    void readsClipTextEncoderFixture() throws Exception {
        try (SafetensorsFile file = SafetensorsFile.open(
                TestFixtures.folder("tiny_clip_text").resolve("model.safetensors"))) {
            assertThat(file.names()).hasSize(84).contains("final_layer_norm.weight");
            SafeTensor embedding = file.tensor("embeddings.token_embedding.weight");
            assertThat(embedding.shape()).containsExactly(1000, 32);
            assertThat(embedding.toFloatArray()).startsWith(0x1.dec148p-4f, 0x1.c3e79p-3f, -0x1.3307b8p-4f);
        }
    }

    @Test
    void dataIsReadOnlyLittleEndianAndIndependentPerCall() throws Exception {
        try (SafetensorsFile file = SafetensorsFile.open(
                TestFixtures.folder("tiny_vae_decoder").resolve("diffusion_pytorch_model.safetensors"))) {
            SafeTensor tensor = file.tensor("decoder.conv_in.bias");
            ByteBuffer first = tensor.data();
            assertThat(first.isReadOnly()).isTrue();
            assertThat(first.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
            first.getFloat();
            assertThat(tensor.data().position()).isZero();
            assertThat(tensor.data().getFloat()).isEqualTo(0x1.cb8114p-7f);
        }
    }

    @Test
    void tensorsStayReadableAfterClose() throws Exception {
        SafeTensor tensor;
        try (SafetensorsFile file = SafetensorsFile.open(
                TestFixtures.folder("tiny_sd_unet").resolve("diffusion_pytorch_model.safetensors"))) {
            tensor = file.tensor("conv_in.bias");
            file.close();
            assertThatThrownBy(() -> file.tensor("conv_in.bias"))
                    .isInstanceOf(SafetensorsException.class).hasMessageContaining("closed");
        }
        assertThat(tensor.toFloatArray()[0]).isEqualTo(0x1.4b89e6p-6f);
    }

    @Test
    void missingTensorSuggestsCloseNames() throws Exception {
        Path path = TestFixtures.folder("tiny_sd_unet").resolve("diffusion_pytorch_model.safetensors");
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertThat(file.contains("conv_in.wieght")).isFalse();
            assertThatThrownBy(() -> file.tensor("conv_in.wieght"))
                    .isInstanceOf(SafetensorsException.class)
                    .hasMessageContaining(path.toString())
                    .hasMessageContaining("'conv_in.wieght'")
                    .hasMessageContaining("closest: 'conv_in.weight'");
        }
    }

    @Test
    void scalarsAndEmptyTensorsAreValid(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("edge.safetensors");
        new SafetensorsWriter()
                .addFloats("scalar", new long[0], new float[] {2.5f})
                .add("empty", SafeDType.F16, new long[] {0, 3}, ByteBuffer.allocate(0))
                .addFloats("after", new long[] {1}, new float[] {-1f})
                .write(path);
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertThat(file.tensor("scalar").rank()).isZero();
            assertThat(file.tensor("scalar").toFloatArray()).containsExactly(2.5f);
            assertThat(file.tensor("empty").shape()).containsExactly(0, 3);
            assertThat(file.tensor("empty").toFloatArray()).isEmpty();
            assertThat(file.tensor("after").toFloatArray()).containsExactly(-1f);
        }
    }

    @Test
    void integerTensorsDoNotConvertToFloat(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("ids.safetensors");
        ByteBuffer ids = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(49406).putLong(49407).flip();
        new SafetensorsWriter().add("input_ids", SafeDType.I64, new long[] {1, 2}, ids).write(path);
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            SafeTensor tensor = file.tensor("input_ids");
            assertThat(tensor.dtype()).isEqualTo(SafeDType.I64);
            assertThat(tensor.data().getLong(8)).isEqualTo(49407);
            assertThatThrownBy(tensor::toFloatArray)
                    .isInstanceOf(UnsupportedOperationException.class)
                    .hasMessageContaining("input_ids").hasMessageContaining("I64");
        }
    }

    @Test
    void convertsHalfPrecisionTensors(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("half.safetensors");
        ByteBuffer fp16 = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) 0x3c00).putShort((short) 0xc000).putShort((short) 0x0001).flip();
        ByteBuffer bf16 = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) 0x4049).putShort((short) 0xff80).flip();
        new SafetensorsWriter()
                .add("half", SafeDType.F16, new long[] {3}, fp16)
                .add("brain", SafeDType.BF16, new long[] {2}, bf16)
                .write(path);
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertThat(file.tensor("half").toFloatArray()).containsExactly(1f, -2f, 0x1p-24f);
            assertThat(file.tensor("brain").toFloatArray()).containsExactly(3.140625f, Float.NEGATIVE_INFINITY);
        }
    }
}
