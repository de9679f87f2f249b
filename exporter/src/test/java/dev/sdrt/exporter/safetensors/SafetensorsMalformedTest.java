package dev.sdrt.exporter.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One test per way a file can be broken; each is crafted byte by byte. */
class SafetensorsMalformedTest {
    @TempDir
    Path dir;

    /** Writes the length prefix, the header as given, then {@code dataBytes} zero bytes. */
    private Path craft(String header, int dataBytes) throws Exception {
        byte[] headerBytes = header.getBytes(StandardCharsets.UTF_8);
        return craft(headerBytes.length, headerBytes, dataBytes);
    }

    private Path craft(long declaredHeaderLength, byte[] headerBytes, int dataBytes) throws Exception {
        ByteBuffer bytes = ByteBuffer.allocate(8 + headerBytes.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(declaredHeaderLength).put(headerBytes);
        Path path = dir.resolve("broken.safetensors");
        Files.write(path, bytes.array());
        return path;
    }

    private static AbstractThrowableAssert<?, ? extends Throwable> assertOpenFails(Path path) {
        return assertThatThrownBy(() -> SafetensorsFile.open(path).close())
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining(path.toString());
    }

    @Test
    void fileShorterThanLengthPrefix() throws Exception {
        Path path = dir.resolve("short.safetensors");
        Files.write(path, new byte[] {1, 2, 3, 4, 5});
        assertOpenFails(path).hasMessageContaining("5 bytes, shorter than the 8-byte header length");
    }

    @Test
    void headerLengthOverLimitIsRejectedBeforeAllocating() throws Exception {
        assertOpenFails(craft(200_000_000L, new byte[0], 0)).hasMessageContaining("header length 200000000 exceeds");
    }

    @Test
    void headerLengthReadAsUnsigned() throws Exception {
        assertOpenFails(craft(-1L, new byte[0], 0)).hasMessageContaining("18446744073709551615");
    }

    @Test
    void headerLengthPastEndOfFile() throws Exception {
        assertOpenFails(craft(100, "{}".getBytes(StandardCharsets.UTF_8), 0))
                .hasMessageContaining("header length 100 runs past the end of the file (10 bytes)");
    }

    @Test
    void headerNotValidJson() throws Exception {
        assertOpenFails(craft("{\"a\": {\"dtype\": ", 0)).hasMessageContaining("not valid JSON");
    }

    @Test
    void headerWithTrailingGarbage() throws Exception {
        assertOpenFails(craft("{} {}", 0)).hasMessageContaining("not valid JSON: at line 1 column 5");
    }

    @Test
    void headerNotAnObject() throws Exception {
        assertOpenFails(craft("[1, 2]", 0)).hasMessageContaining("not a JSON object");
    }

    @Test
    void headerNotUtf8() throws Exception {
        byte[] header = {'{', '"', (byte) 0xff, '"', ':', '1', '}'};
        assertOpenFails(craft(header.length, header, 0)).hasMessageContaining("not valid UTF-8");
    }

    @Test
    void duplicateTensorName() throws Exception {
        String entry = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
        assertOpenFails(craft("{\"w\":" + entry + ",\"w\":" + entry + "}", 4)).hasMessageContaining("'w' twice");
    }

    @Test
    void metadataValueNotString() throws Exception {
        assertOpenFails(craft("{\"__metadata__\":{\"total\":3}}", 0))
                .hasMessageContaining("__metadata__ value of 'total' is not a string");
    }

    @Test
    void entryNotAnObject() throws Exception {
        assertOpenFails(craft("{\"w\": 3}", 0)).hasMessageContaining("tensor 'w': header entry is not a JSON object");
    }

    @Test
    void unknownDtype() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1))
                .hasMessageContaining("tensor 'w': unknown dtype 'F4'");
    }

    @Test
    void dtypeNamesAreCaseSensitive() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("unknown dtype 'f32'");
    }

    @Test
    void negativeDimension() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 8))
                .hasMessageContaining("tensor 'w': negative dimension in shape [-1,2]");
    }

    @Test
    void fractionalDimension() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("'shape' holds 1.5, not an integer");
    }

    @Test
    void offsetsNotAPair() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4))
                .hasMessageContaining("tensor 'w': 'data_offsets' must be [begin, end]");
    }

    @Test
    void offsetsBeginAfterEnd() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8))
                .hasMessageContaining("'data_offsets' [8,4] is not [begin, end] with 0 <= begin <= end");
    }

    @Test
    void missingShape() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("'shape' is missing or not an array");
    }

    @Test
    void offsetsEndPastDataSection() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8))
                .hasMessageContaining("tensor 'w'")
                .hasMessageContaining("end past the data section, which is 8 bytes");
    }

    @Test
    void byteCountDisagreesWithShape() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8))
                .hasMessageContaining("tensor 'w': holds 8 bytes but shape [3] of F32 needs 12");
    }

    @Test
    void shapeOverflowingLong() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("more elements than a file can hold");
    }

    @Test
    void overlappingTensors() throws Exception {
        assertOpenFails(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12))
                .hasMessageContaining("tensors 'a' [0, 8) and 'b' [4, 12) overlap");
    }

    @Test
    void tensorOver2GiBIsListedButCannotBeMapped() throws Exception {
        long bytes = 3L << 30;
        String header = "{\"huge\":{\"dtype\":\"F16\",\"shape\":[" + (bytes / 2) + "],\"data_offsets\":[0," + bytes + "]}}";
        Path path = craft(header, 0);
        try (RandomAccessFile file = new RandomAccessFile(path.toFile(), "rw")) {
            file.setLength(file.length() + bytes); // sparse: takes no disk space
        }
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertThat(file.names()).containsExactly("huge");
            assertThatThrownBy(() -> file.tensor("huge"))
                    .isInstanceOf(SafetensorsException.class)
                    .hasMessageContaining(path.toString())
                    .hasMessageContaining("tensor 'huge' is 3221225472 bytes")
                    .hasMessageContaining("at most 2 GiB");
        }
    }
}
