package dev.sdrt.exporter.safetensors;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import dev.sdrt.exporter.json.JsonInput;
import java.io.IOException;
import java.io.StringReader;
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
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

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
    /**
     * The deepest a header nests: a valid one goes three levels (the header, a tensor's entry, its shape),
     * and a little more leaves room for fields the format does not define, which are skipped.
     */
    static final int MAX_HEADER_DEPTH = 6;
    /** numpy allows 64 dimensions at most (32 before 2.0); a longer shape is a corrupt header. */
    static final int MAX_RANK = 64;
    private static final Pattern INTEGER = Pattern.compile("-?[0-9]+");

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
            String header = decodeUtf8(readFully(LENGTH_PREFIX_BYTES, (int) headerLength));

            Map<String, String> metadata = new TreeMap<>();
            Map<String, Entry> entries = new TreeMap<>();
            parseHeader(header, metadata, entries);
            checkCoverage(entries.values());
            return new SafetensorsFile(path, channel, dataStart, metadata, entries);
        }

        private ByteBuffer readFully(long position, int length) throws IOException {
            ByteBuffer buffer = ByteBuffer.allocate(length);
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, position + buffer.position()) < 0) {
                    throw fail("file ended while reading the header (was it cut short while being read?)");
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
         * Reads the header as a stream of tokens rather than as a tree: two entries with the same name are
         * caught (a JsonObject would keep the last), nesting is refused where it appears instead of being
         * built, and a 100 MB header costs no tree of millions of objects. As the format says, the JSON
         * object starts the header and only spaces may follow it.
         */
        private void parseHeader(String header, Map<String, String> metadata, Map<String, Entry> entries)
                throws SafetensorsException {
            int end = header.length();
            while (end > 0 && header.charAt(end - 1) == ' ') {
                end--;
            }
            String json = header.substring(0, end);
            if (json.isEmpty()) {
                throw fail("header is empty; it must be a JSON object");
            }
            if (Character.isWhitespace(json.charAt(0))) {
                throw fail("header starts with whitespace; its JSON object must start at the first byte");
            }
            try {
                JsonReader reader = new JsonReader(new StringReader(json));
                reader.setStrictness(Strictness.STRICT);
                if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                    throw fail("header is not a JSON object (it is " + found(reader) + ")");
                }
                reader.beginObject();
                Set<String> seen = new HashSet<>();
                while (reader.hasNext()) {
                    String key = reader.nextName();
                    if (!seen.add(key)) {
                        throw fail("header names '" + abbreviate(key) + "' twice");
                    }
                    if (key.equals(METADATA_KEY)) {
                        readMetadata(reader, metadata);
                    } else {
                        entries.put(key, readEntry(reader, key));
                    }
                }
                reader.endObject();
                if (reader.peek() != JsonToken.END_DOCUMENT) {
                    throw fail("header has content after its JSON object");
                }
            } catch (SafetensorsException e) {
                throw e;
            } catch (IOException e) {
                throw fail("header is not valid JSON: " + JsonInput.describeError(e), e);
            }
            if (json.charAt(json.length() - 1) != '}') {
                throw fail("header pads its JSON object with whitespace other than spaces");
            }
        }

        private void readMetadata(JsonReader reader, Map<String, String> metadata) throws IOException {
            if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                throw fail(METADATA_KEY + " is not a JSON object (it is " + found(reader) + ")");
            }
            reader.beginObject();
            while (reader.hasNext()) {
                String key = reader.nextName();
                if (reader.peek() != JsonToken.STRING) {
                    throw fail(METADATA_KEY + " value of '" + abbreviate(key) + "' is not a string (it is "
                            + found(reader) + ")");
                }
                if (metadata.put(key, reader.nextString()) != null) {
                    throw fail(METADATA_KEY + " names '" + abbreviate(key) + "' twice");
                }
            }
            reader.endObject();
        }

        /** One tensor's entry: its three fields in any order; fields the format does not define are skipped. */
        private Entry readEntry(JsonReader reader, String name) throws IOException {
            if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                throw fail(name, "header entry is not a JSON object (it is " + found(reader) + ")");
            }
            reader.beginObject();
            Set<String> fields = new HashSet<>();
            String dtypeName = null;
            long[] shape = null;
            long[] offsets = null;
            while (reader.hasNext()) {
                String field = reader.nextName();
                if (!fields.add(field)) {
                    throw fail(name, "'" + abbreviate(field) + "' appears twice");
                }
                switch (field) {
                    case "dtype" -> {
                        if (reader.peek() != JsonToken.STRING) {
                            throw fail(name, "'dtype' is not a string (it is " + found(reader) + ")");
                        }
                        dtypeName = reader.nextString();
                    }
                    case "shape" -> shape = readIntegers(reader, name, "shape", MAX_RANK);
                    case "data_offsets" -> offsets = readIntegers(reader, name, "data_offsets", 2);
                    default -> {
                        // the header object and this entry are two levels already
                        if (!JsonInput.skipValue(reader, MAX_HEADER_DEPTH - 2)) {
                            throw fail(name, "'" + abbreviate(field) + "' nests deeper than a header may ("
                                    + MAX_HEADER_DEPTH + " levels in all)");
                        }
                    }
                }
            }
            reader.endObject();
            if (dtypeName == null || shape == null || offsets == null) {
                throw fail(name, "'" + (dtypeName == null ? "dtype" : shape == null ? "shape" : "data_offsets")
                        + "' is missing");
            }
            return validate(name, dtypeName, shape, offsets);
        }

        private Entry validate(String name, String dtypeName, long[] shape, long[] offsets)
                throws SafetensorsException {
            SafeDType dtype = SafeDType.fromHeaderName(dtypeName).orElseThrow(() -> fail(name,
                    "unknown dtype '" + abbreviate(dtypeName) + "' (known: " + Arrays.toString(SafeDType.values())
                            + ")"));
            for (long dim : shape) {
                if (dim < 0) {
                    throw fail(name, "negative dimension in shape " + format(shape));
                }
            }
            if (offsets.length != 2) {
                throw fail(name, "'data_offsets' must be [begin, end], not " + format(offsets));
            }
            long begin = offsets[0];
            long end = offsets[1];
            if (begin < 0 || begin > end) {
                throw fail(name, "'data_offsets' " + format(offsets) + " is not [begin, end] with 0 <= begin <= end");
            }
            if (end > dataSize) {
                throw fail(name, "'data_offsets' " + format(offsets) + " end past the data section, which is "
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
                throw fail(name, "shape " + format(shape) + " has too many elements: they would take more than "
                        + Long.MAX_VALUE + " bytes of " + dtype);
            }
            if (end - begin != expectedBytes) {
                throw fail(name, "holds " + (end - begin) + " bytes but shape " + format(shape) + " of " + dtype
                        + " needs " + expectedBytes);
            }
            return new Entry(name, dtype, shape, begin, end);
        }

        /**
         * An array of at most {@code maxEntries} integers. Like the reference reader, which reads them as
         * unsigned integers, only digits count: 4.0 and 4e0 are refused, and so is anything past a long.
         */
        private long[] readIntegers(JsonReader reader, String name, String key, int maxEntries) throws IOException {
            if (reader.peek() != JsonToken.BEGIN_ARRAY) {
                throw fail(name, "'" + key + "' is not an array (it is " + found(reader) + ")");
            }
            reader.beginArray();
            List<Long> values = new ArrayList<>();
            while (reader.hasNext()) {
                if (values.size() == maxEntries) {
                    throw fail(name, "'" + key + "' has more than " + maxEntries + " entries");
                }
                String literal = reader.peek() == JsonToken.NUMBER ? reader.nextString() : null;
                if (literal == null || !INTEGER.matcher(literal).matches()) {
                    throw fail(name, "'" + key + "' holds " + (literal == null ? found(reader) : abbreviate(literal))
                            + ", not an integer");
                }
                try {
                    values.add(Long.parseLong(literal));
                } catch (NumberFormatException e) {
                    throw fail(name, "'" + key + "' holds " + abbreviate(literal) + ", beyond the largest "
                            + "integer a header may hold (" + Long.MAX_VALUE + ")");
                }
            }
            reader.endArray();
            return values.stream().mapToLong(Long::longValue).toArray();
        }

        /**
         * As the reference reader requires: sorted by offsets, the tensors tile the data section, each
         * beginning where the one before ends (empty tensors too), the first at 0 and the last ending at the
         * end of the file. Bytes that belong to no tensor mean a wrong header length, or bytes inserted or cut
         * out; reading on would hand out every tensor shifted.
         */
        private void checkCoverage(Collection<Entry> entries) throws SafetensorsException {
            List<Entry> sorted = new ArrayList<>(entries);
            sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
            Entry previous = null;
            long covered = 0;
            for (Entry current : sorted) {
                if (current.begin() < covered) {
                    throw fail("tensors '" + abbreviate(previous.name()) + "' " + range(previous) + " and '"
                            + abbreviate(current.name()) + "' " + range(current) + " overlap");
                }
                if (current.begin() > covered) {
                    throw fail("bytes [" + covered + ", " + current.begin() + ") of the data section belong to no "
                            + "tensor: " + (previous == null ? "the first tensor, '" + abbreviate(current.name()) + "',"
                                    : "'" + abbreviate(previous.name()) + "' ends at " + covered + ", '"
                                            + abbreviate(current.name()) + "'")
                            + " begins at " + current.begin());
                }
                covered = current.end();
                previous = current;
            }
            if (covered != dataSize) {
                throw fail("bytes [" + covered + ", " + dataSize + ") at the end of the data section belong to no "
                        + "tensor (a wrong header length, or bytes added to the file?)");
            }
        }

        private static String range(Entry entry) {
            return "[" + entry.begin() + ", " + entry.end() + ")";
        }

        /** An array as the header writes it: [1,2,3]. */
        private static String format(long[] values) {
            return abbreviate(Arrays.stream(values).mapToObj(Long::toString).collect(Collectors.joining(",", "[", "]")));
        }

        /** What the reader is at, for a message, consuming it when it is a primitive: 3, "F32", an array. */
        private static String found(JsonReader reader) throws IOException {
            return switch (reader.peek()) {
                case BEGIN_ARRAY -> "an array";
                case BEGIN_OBJECT -> "an object";
                case STRING -> "the string \"" + abbreviate(reader.nextString()) + "\"";
                case NUMBER -> "the number " + abbreviate(reader.nextString());
                case BOOLEAN -> String.valueOf(reader.nextBoolean());
                case NULL -> "null";
                default -> "nothing";
            };
        }

        private SafetensorsException fail(String message) {
            return new SafetensorsException(path + ": " + message);
        }

        private SafetensorsException fail(String message, Throwable cause) {
            return new SafetensorsException(path + ": " + message, cause);
        }

        private SafetensorsException fail(String tensorName, String message) {
            return new SafetensorsException(path + ": tensor '" + abbreviate(tensorName) + "': " + message);
        }
    }
}
