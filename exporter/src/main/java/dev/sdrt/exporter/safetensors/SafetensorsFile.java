package dev.sdrt.exporter.safetensors;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.EOFException;
import java.io.IOException;
import java.io.StringReader;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One safetensors file: an 8-byte little-endian header length N, N bytes of JSON describing each tensor
 * (dtype, shape, byte range relative to the data section), then the data section. The header is read and
 * fully validated on {@link #open}; tensor bytes are memory-mapped one tensor at a time on request, so a
 * multi-gigabyte checkpoint costs no heap.
 */
public final class SafetensorsFile implements TensorSource {
    /** Same cap as the reference implementation: a larger header is corrupt, and would be a huge allocation. */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final String METADATA_KEY = "__metadata__";
    private static final int LENGTH_PREFIX_BYTES = 8;
    private static final TypeAdapter<JsonElement> JSON_ELEMENTS = new Gson().getAdapter(JsonElement.class);

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final Map<String, Entry> entries;
    private final List<String> names;

    /** A validated header entry; begin and end are relative to the data section. */
    private record Entry(String name, SafeDType dtype, long[] shape, long begin, long end) {
        long byteCount() {
            return end - begin;
        }
    }

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, String> metadata,
                            Map<String, Entry> entries) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.entries = entries;
        this.names = List.copyOf(entries.keySet());
    }

    /** Opens {@code path} and validates its header; the file stays open until {@link #close()}. */
    public static SafetensorsFile open(Path path) throws IOException {
        FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
        try {
            return new HeaderReader(path, channel).read();
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** The header's {@code __metadata__} (for example {"format": "pt"}); empty when absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public List<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    @Override
    public SafeTensor tensor(String name) throws IOException {
        Entry entry = entries.get(name);
        if (entry == null) {
            throw new SafetensorsException(path + ": " + NameSuggestions.describeMissing("tensor", names, name));
        }
        if (entry.byteCount() > Integer.MAX_VALUE) {
            throw new SafetensorsException(path + ": tensor '" + name + "' is " + entry.byteCount()
                    + " bytes; a ByteBuffer holds at most 2 GiB - 1, so it cannot be mapped as one buffer");
        }
        if (!channel.isOpen()) {
            throw new SafetensorsException(path + ": file is closed; cannot read tensor '" + name + "'");
        }
        ByteBuffer bytes = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + entry.begin(), entry.byteCount());
        return new SafeTensor(name, entry.dtype(), entry.shape(), bytes);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + names.size() + " tensors]";
    }

    /** Reads and validates the header of one file; every failure names the file, and the tensor where there is one. */
    private static final class HeaderReader {
        private final Path path;
        private final FileChannel channel;
        private long dataSize;

        HeaderReader(Path path, FileChannel channel) {
            this.path = path;
            this.channel = channel;
        }

        SafetensorsFile read() throws IOException {
            long fileSize = channel.size();
            if (fileSize < LENGTH_PREFIX_BYTES) {
                throw fail("file is " + fileSize + " bytes, shorter than the 8-byte header length");
            }
            long headerLength = readFully(0, LENGTH_PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            // The length is unsigned; a negative long is a value of 2^63 or more.
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw fail("header length " + Long.toUnsignedString(headerLength) + " exceeds the limit of "
                        + MAX_HEADER_BYTES + " bytes (corrupt file, or not safetensors)");
            }
            if (headerLength > fileSize - LENGTH_PREFIX_BYTES) {
                throw fail("header length " + headerLength + " runs past the end of the file (" + fileSize
                        + " bytes)");
            }
            long dataStart = LENGTH_PREFIX_BYTES + headerLength;
            dataSize = fileSize - dataStart;
            String headerJson = decodeUtf8(readFully(LENGTH_PREFIX_BYTES, (int) headerLength));

            Map<String, String> metadata = new TreeMap<>();
            Map<String, Entry> entries = new TreeMap<>();
            parseHeader(headerJson, metadata, entries);
            checkNoOverlap(entries.values());
            return new SafetensorsFile(path, channel, dataStart, metadata, entries);
        }

        private ByteBuffer readFully(long position, int length) throws IOException {
            ByteBuffer buffer = ByteBuffer.allocate(length);
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, position + buffer.position()) < 0) {
                    throw new EOFException(path + ": file ended while reading the header");
                }
            }
            return buffer.flip();
        }

        private String decodeUtf8(ByteBuffer bytes) throws SafetensorsException {
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(bytes)
                        .toString();
            } catch (CharacterCodingException e) {
                throw fail("header is not valid UTF-8", e);
            }
        }

        /**
         * Walks the top-level object entry by entry rather than parsing it into a JsonObject, which would
         * silently keep only the last of two entries with the same name.
         */
        private void parseHeader(String json, Map<String, String> metadata, Map<String, Entry> entries)
                throws SafetensorsException {
            Map<String, JsonElement> rawEntries = new TreeMap<>();
            Set<String> seen = new HashSet<>();
            try {
                JsonReader reader = new JsonReader(new StringReader(json));
                reader.setStrictness(Strictness.STRICT);
                if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                    throw fail("header is not a JSON object (starts with " + reader.peek() + ")");
                }
                reader.beginObject();
                while (reader.hasNext()) {
                    String key = reader.nextName();
                    if (!seen.add(key)) {
                        throw fail("header names '" + key + "' twice");
                    }
                    rawEntries.put(key, JSON_ELEMENTS.read(reader));
                }
                reader.endObject();
                if (reader.peek() != JsonToken.END_DOCUMENT) {
                    throw fail("header has content after its JSON object");
                }
            } catch (SafetensorsException e) {
                throw e;
            } catch (IOException | IllegalStateException | NumberFormatException e) {
                throw fail("header is not valid JSON: " + describeJsonError(e), e);
            }
            for (Map.Entry<String, JsonElement> raw : rawEntries.entrySet()) {
                if (raw.getKey().equals(METADATA_KEY)) {
                    parseMetadata(raw.getValue(), metadata);
                } else {
                    entries.put(raw.getKey(), parseEntry(raw.getKey(), raw.getValue()));
                }
            }
        }

        /**
         * Gson's message minus its advice to parse leniently, which is not a choice the user of a model file
         * can make: "at line 1 column 5 path $".
         */
        private static String describeJsonError(Exception e) {
            String firstLine = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            return firstLine.replace("Use JsonReader.setStrictness(Strictness.LENIENT) to accept malformed JSON ", "");
        }

        private void parseMetadata(JsonElement value, Map<String, String> metadata) throws SafetensorsException {
            if (!value.isJsonObject()) {
                throw fail(METADATA_KEY + " is not a JSON object");
            }
            for (Map.Entry<String, JsonElement> item : value.getAsJsonObject().entrySet()) {
                JsonElement itemValue = item.getValue();
                if (!itemValue.isJsonPrimitive() || !itemValue.getAsJsonPrimitive().isString()) {
                    throw fail(METADATA_KEY + " value of '" + item.getKey() + "' is not a string: " + itemValue);
                }
                metadata.put(item.getKey(), itemValue.getAsString());
            }
        }

        private Entry parseEntry(String name, JsonElement value) throws SafetensorsException {
            if (!value.isJsonObject()) {
                throw fail(name, "header entry is not a JSON object: " + value);
            }
            JsonObject fields = value.getAsJsonObject();

            JsonElement dtypeField = fields.get("dtype");
            if (dtypeField == null || !dtypeField.isJsonPrimitive() || !dtypeField.getAsJsonPrimitive().isString()) {
                throw fail(name, "'dtype' is missing or not a string: " + dtypeField);
            }
            SafeDType dtype = SafeDType.fromHeaderName(dtypeField.getAsString()).orElseThrow(() -> fail(name,
                    "unknown dtype '" + dtypeField.getAsString() + "' (known: "
                            + Arrays.toString(SafeDType.values()) + ")"));

            JsonArray shapeArray = requireArray(name, fields, "shape");
            long[] shape = new long[shapeArray.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = requireLong(name, "shape", shapeArray.get(i));
                if (shape[i] < 0) {
                    throw fail(name, "negative dimension in shape " + shapeArray);
                }
            }

            JsonArray offsets = requireArray(name, fields, "data_offsets");
            if (offsets.size() != 2) {
                throw fail(name, "'data_offsets' must be [begin, end], not " + offsets);
            }
            long begin = requireLong(name, "data_offsets", offsets.get(0));
            long end = requireLong(name, "data_offsets", offsets.get(1));
            if (begin < 0 || begin > end) {
                throw fail(name, "'data_offsets' " + offsets + " is not [begin, end] with 0 <= begin <= end");
            }
            if (end > dataSize) {
                throw fail(name, "'data_offsets' " + offsets + " end past the data section, which is "
                        + dataSize + " bytes");
            }

            long expectedBytes;
            try {
                long elements = 1;
                for (long dim : shape) {
                    elements = Math.multiplyExact(elements, dim);
                }
                expectedBytes = Math.multiplyExact(elements, dtype.byteSize());
            } catch (ArithmeticException e) {
                throw fail(name, "shape " + shapeArray + " has more elements than a file can hold");
            }
            if (end - begin != expectedBytes) {
                throw fail(name, "holds " + (end - begin) + " bytes but shape " + shapeArray + " of " + dtype
                        + " needs " + expectedBytes);
            }
            return new Entry(name, dtype, shape, begin, end);
        }

        /** Sorted by begin, each non-empty range must start at or after the end of the one before. */
        private void checkNoOverlap(Iterable<Entry> entries) throws SafetensorsException {
            List<Entry> occupied = new ArrayList<>();
            for (Entry entry : entries) {
                if (entry.byteCount() > 0) { // an empty tensor occupies no bytes, wherever its offsets point
                    occupied.add(entry);
                }
            }
            occupied.sort(Comparator.comparingLong(Entry::begin));
            for (int i = 1; i < occupied.size(); i++) {
                Entry previous = occupied.get(i - 1);
                Entry current = occupied.get(i);
                if (current.begin() < previous.end()) {
                    throw fail("tensors '" + previous.name() + "' [" + previous.begin() + ", " + previous.end()
                            + ") and '" + current.name() + "' [" + current.begin() + ", " + current.end()
                            + ") overlap");
                }
            }
        }

        private JsonArray requireArray(String name, JsonObject fields, String key) throws SafetensorsException {
            JsonElement field = fields.get(key);
            if (field == null || !field.isJsonArray()) {
                throw fail(name, "'" + key + "' is missing or not an array: " + field);
            }
            return field.getAsJsonArray();
        }

        private long requireLong(String name, String key, JsonElement element) throws SafetensorsException {
            if (element.isJsonPrimitive()) {
                JsonPrimitive primitive = element.getAsJsonPrimitive();
                if (primitive.isNumber()) {
                    try {
                        return new BigDecimal(primitive.getAsString()).longValueExact();
                    } catch (ArithmeticException | NumberFormatException e) {
                        // falls through to the error below
                    }
                }
            }
            throw fail(name, "'" + key + "' holds " + element + ", not an integer");
        }

        private SafetensorsException fail(String message) {
            return new SafetensorsException(path + ": " + message);
        }

        private SafetensorsException fail(String message, Throwable cause) {
            return new SafetensorsException(path + ": " + message, cause);
        }

        private SafetensorsException fail(String tensorName, String message) {
            return new SafetensorsException(path + ": tensor '" + tensorName + "': " + message);
        }
    }
}
