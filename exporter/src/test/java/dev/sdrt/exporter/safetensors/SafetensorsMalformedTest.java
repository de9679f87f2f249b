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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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

    /** A header entry for a tensor of {@code count} F32 values at [begin, begin + 4 * count). */
    private static String f32(String name, int count, int begin) {
        return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + count + "],\"data_offsets\":[" + begin + ","
                + (begin + 4 * count) + "]}";
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
                .hasMessageContaining("tensor 'w': 'shape' is missing");
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
                .hasMessageContaining("tensor 'w': shape [4294967296,4294967296] has too many elements");
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

    /**
     * 10,000 nested arrays wherever a value can stand. Printing such a value into the message used to overflow
     * the stack; now it is refused where it starts, without recursion, and the message stays short.
     */
    @ParameterizedTest
    @ValueSource(strings = {
        "DEEP",
        "{\"w\":DEEP}",
        "{\"w\":{\"dtype\":DEEP,\"shape\":[0],\"data_offsets\":[0,0]}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":DEEP,\"data_offsets\":[0,0]}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"extra\":DEEP}}",
        "{\"__metadata__\":DEEP}",
        "{\"__metadata__\":{\"format\":DEEP}}"})
    void deeplyNestedHeader(String template) throws Exception {
        String header = template.replace("DEEP", "[".repeat(10_000) + "]".repeat(10_000));
        assertOpenFails(craft(header, 0)).message().hasSizeLessThan(1_000);
    }

    @Test
    void fieldsTheFormatDoesNotDefineAreSkipped() throws Exception {
        String header = "{\"w\":{\"dtype\":\"F32\",\"extra\":{\"a\":[[1]]},\"shape\":[1],\"data_offsets\":[0,4]}}";
        try (SafetensorsFile file = SafetensorsFile.open(craft(header, 4))) {
            assertThat(file.tensor("w").toFloatArray()).containsExactly(0f);
        }
        String tooDeep = "{\"w\":{\"dtype\":\"F32\",\"extra\":[[[[[1]]]]],\"shape\":[1],\"data_offsets\":[0,4]}}";
        assertOpenFails(craft(tooDeep, 4)).hasMessageContaining("tensor 'w': 'extra' nests deeper than a header may");
    }

    /**
     * The Python library pads the header with spaces. A length one short leaves the last space to the data
     * section: the JSON still parses, and every tensor used to be read one byte off.
     */
    @Test
    void headerLengthOneShortOfAPaddedHeader() throws Exception {
        byte[] bytes = Files.readAllBytes(TestFixtures.folder("tiny_clip_text").resolve("model.safetensors"));
        ByteBuffer prefix = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = prefix.getLong(0);
        assertThat(bytes[8 + (int) headerLength - 1]).as("the fixture's header ends in padding").isEqualTo((byte) ' ');
        prefix.putLong(0, headerLength - 1);
        Path path = dir.resolve("one_short.safetensors");
        Files.write(path, bytes);
        assertOpenFails(path).hasMessageContaining("at the end of the data section belong to no tensor");
    }

    @Test
    void headerPaddedWithSpacesOnly() throws Exception {
        String header = "{" + f32("w", 1, 0) + "}";
        try (SafetensorsFile file = SafetensorsFile.open(craft(header + "   ", 4))) {
            assertThat(file.names()).containsExactly("w");
        }
        assertOpenFails(craft(header + "\n  ", 4)).hasMessageContaining("whitespace other than spaces");
        assertOpenFails(craft(" " + header, 4)).hasMessageContaining("header starts with whitespace");
        assertOpenFails(craft("    ", 0)).hasMessageContaining("header is empty");
    }

    /** Bytes inserted after the last tensor's data (here between two tensors, moving the second): read shifted before. */
    @Test
    void extraBytesInsideTheDataSection() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1).putInt(0xdead).putFloat(2);
        byte[] header = ("{" + f32("a", 1, 0) + "," + f32("b", 1, 4) + "}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer bytes = ByteBuffer.allocate(8 + header.length + 12).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(header.length).put(header).put(data.array());
        Path path = dir.resolve("inserted.safetensors");
        Files.write(path, bytes.array());
        assertOpenFails(path).hasMessageContaining("bytes [8, 12) at the end of the data section belong to no tensor");
    }

    @Test
    void gapBetweenTensors() throws Exception {
        assertOpenFails(craft("{" + f32("a", 1, 0) + "," + f32("b", 1, 8) + "}", 12))
                .hasMessageContaining("bytes [4, 8) of the data section belong to no tensor: 'a' ends at 4, 'b' begins at 8");
    }

    @Test
    void firstTensorNotAtTheStartOfTheDataSection() throws Exception {
        assertOpenFails(craft("{" + f32("a", 1, 4) + "}", 8))
                .hasMessageContaining("bytes [0, 4) of the data section belong to no tensor: the first tensor, 'a', begins at 4");
    }

    @Test
    void dataSectionWithoutTensors() throws Exception {
        assertOpenFails(craft("{}", 4)).hasMessageContaining("bytes [0, 4) at the end of the data section belong to no tensor");
    }

    /** As in the reference reader, an empty tensor takes its place in the sequence too: not inside another. */
    @Test
    void emptyTensorInsideAnother() throws Exception {
        String empty = "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}";
        assertOpenFails(craft("{" + f32("a", 2, 0) + "," + empty + "}", 8))
                .hasMessageContaining("tensors 'a' [0, 8) and 'e' [4, 4) overlap");
        try (SafetensorsFile file = SafetensorsFile.open(craft("{" + f32("a", 1, 0) + "," + empty + "," + f32("b", 1, 4) + "}", 8))) {
            assertThat(file.tensor("e").byteSize()).isZero();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"[1099511627776,1099511627776]", "[1099511627776,1099511627776,0]",
        "[9223372036854775807,2]", "[3037000500,3037000500]"})
    void shapeWhoseSizeOverflows(String shape) throws Exception {
        assertOpenFails(craft("{\"x\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("tensor 'x': shape " + shape + " has too many elements");
    }

    @Test
    void offsetsNearTheLargestLong() throws Exception {
        assertOpenFails(craft("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
                + "\"data_offsets\":[9223372036854775803,9223372036854775807]}}", 4))
                .hasMessageContaining("end past the data section, which is 4 bytes");
        assertOpenFails(craft("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9223372036854775808]}}", 4))
                .hasMessageContaining("'data_offsets' holds 9223372036854775808, beyond the largest integer");
    }

    /** The reference reader reads them as unsigned integers: 4.0 or 4e0 is not one. */
    @Test
    void integersAreDigitsOnly() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("'shape' holds 1.0, not an integer");
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4e0]}}", 4))
                .hasMessageContaining("'data_offsets' holds 4e0, not an integer");
    }

    @Test
    void fieldGivenTwice() throws Exception {
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("tensor 'w': 'dtype' appears twice");
    }

    @Test
    void quotedInputIsCutShort() throws Exception {
        String longName = "n".repeat(1_000_000);
        assertOpenFails(craft("{\"" + longName + "\":{\"dtype\":\"" + "F".repeat(1_000_000)
                + "\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4))
                .hasMessageContaining("(1000000 characters)")
                .message().hasSizeLessThan(1_000);
        assertOpenFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[" + "9".repeat(1_000_000) + "],\"data_offsets\":[0,4]}}", 4))
                .message().hasSizeLessThan(1_000);
    }
}
