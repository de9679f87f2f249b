package dev.sdrt.exporter.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsDtypesShapesValuesAndMetadata() throws Exception {
        Path path = dir.resolve("weights.safetensors");
        ByteBuffer bf16 = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) 0x3f80).putShort((short) 0xc000).flip();
        new SafetensorsWriter()
                .putMetadata("format", "pt")
                .addFloats("linear.weight", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, Float.NaN})
                .add("norm.weight", SafeDType.BF16, new long[] {2}, bf16)
                .add("mask", SafeDType.BOOL, new long[] {3}, ByteBuffer.wrap(new byte[] {1, 0, 1}))
                .write(path);

        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertThat(file.metadata()).containsExactlyEntriesOf(java.util.Map.of("format", "pt"));
            assertThat(file.names()).containsExactly("linear.weight", "mask", "norm.weight");
            SafeTensor linear = file.tensor("linear.weight");
            assertThat(linear.dtype()).isEqualTo(SafeDType.F32);
            assertThat(linear.shape()).containsExactly(2, 3);
            assertThat(linear.toFloatArray()).containsExactly(1, 2, 3, 4, 5, Float.NaN);
            assertThat(file.tensor("norm.weight").toFloatArray()).containsExactly(1f, -2f);
            assertThat(file.tensor("mask").dtype()).isEqualTo(SafeDType.BOOL);
            assertThat(file.tensor("mask").data().get(2)).isEqualTo((byte) 1);
        }
    }

    @Test
    void headerIsPaddedWithSpacesToEightBytes() throws Exception {
        Path path = dir.resolve("padded.safetensors");
        new SafetensorsWriter().addFloats("x", new long[] {1}, new float[] {1}).write(path);
        byte[] bytes = Files.readAllBytes(path);
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(headerLength % 8).isZero();
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertThat(header).startsWith("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}").endsWith(" ");
        assertThat(bytes).hasSize(8 + (int) headerLength + 4);
    }

    @Test
    void widestElementsComeFirstSoEveryTensorIsAligned() throws Exception {
        Path path = dir.resolve("aligned.safetensors");
        new SafetensorsWriter()
                .add("a.byte", SafeDType.U8, new long[] {1}, ByteBuffer.wrap(new byte[] {7}))
                .addFloats("b.float", new long[] {1}, new float[] {1})
                .write(path);
        byte[] bytes = Files.readAllBytes(path);
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertThat(header).contains("\"b.float\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}")
                .contains("\"a.byte\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]}");
    }

    @Test
    void copiesFixtureBitForBit() throws Exception {
        Path copy = dir.resolve("copy.safetensors");
        Path original = TestFixtures.folder("tiny_vae_decoder").resolve("diffusion_pytorch_model.safetensors");
        try (SafetensorsFile source = SafetensorsFile.open(original)) {
            SafetensorsWriter writer = new SafetensorsWriter();
            source.metadata().forEach(writer::putMetadata);
            for (String name : source.names()) {
                writer.add(source.tensor(name));
            }
            writer.write(copy);
            try (SafetensorsFile copied = SafetensorsFile.open(copy)) {
                assertThat(copied.names()).isEqualTo(source.names());
                assertThat(copied.metadata()).isEqualTo(source.metadata());
                for (String name : source.names()) {
                    assertThat(copied.tensor(name).shape()).isEqualTo(source.tensor(name).shape());
                    assertThat(copied.tensor(name).data()).isEqualTo(source.tensor(name).data());
                }
            }
        }
    }

    @Test
    void replacesExistingFileAndLeavesNoTemporaryFiles() throws Exception {
        Path path = dir.resolve("weights.safetensors");
        Files.writeString(path, "old contents");
        new SafetensorsWriter().addFloats("x", new long[] {2}, new float[] {1, 2}).write(path);
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertThat(file.tensor("x").toFloatArray()).containsExactly(1, 2);
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files).containsExactly(path);
        }
    }

    @Test
    void rejectsBadTensors() {
        SafetensorsWriter writer = new SafetensorsWriter().addFloats("x", new long[] {1}, new float[] {1});
        assertThatThrownBy(() -> writer.addFloats("x", new long[] {1}, new float[] {1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("already added");
        assertThatThrownBy(() -> writer.addFloats("__metadata__", new long[] {1}, new float[] {1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot be a tensor name");
        assertThatThrownBy(() -> writer.addFloats("y", new long[] {3}, new float[] {1, 2}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("8 bytes given but F32[3] needs 12");
        assertThatThrownBy(() -> writer.add("z", SafeDType.F16, new long[] {-2}, ByteBuffer.allocate(0)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative dimension");
        assertThatThrownBy(() -> writer.add("big", SafeDType.F32, new long[] {1L << 40, 1L << 40}, ByteBuffer.allocate(0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tensor 'big': shape [1099511627776, 1099511627776] has too many elements");
    }
}
