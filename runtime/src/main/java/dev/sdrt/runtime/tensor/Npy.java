package dev.sdrt.runtime.tensor;

import dev.sdrt.runtime.io.AtomicFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads and writes numpy {@code .npy} files: little-endian, C order, dtypes of {@link DType}.
 *
 * <p>The format: the magic {@code \x93NUMPY}, a major and minor version byte, the header length
 * (2 bytes little-endian in version 1.0; 4 bytes in 2.0 and 3.0), then the header: a Python dict
 * literal such as {@code {'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }} padded with
 * spaces and a newline so that the data starts at a multiple of 64 bytes. Versions 1.0, 2.0 and 3.0
 * (which only changes the header's text encoding to UTF-8) are read; {@link #write} writes exactly
 * the bytes {@code np.save} writes: version 1.0, or 2.0 when the header outgrows 1.0's length field.
 *
 * <p>A file that is not one of these fails with an {@link NpyFormatException} saying what is wrong,
 * and a header is checked against the file before anything it describes is allocated: the header
 * must fit in the file, and the data after it must be exactly product(shape) × itemsize bytes, so a
 * small corrupt or hostile file cannot make the reader allocate gigabytes.
 *
 * <p>bfloat16 has no numpy dtype (see {@link DType}): {@link #write} refuses it, {@link
 * #writeBfloat16AsUint16} stores its raw bits as {@code '<u2'} and {@link #readBfloat16FromUint16}
 * reads them back.
 */
public final class Npy {

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** Data starts at a multiple of this, as numpy aligns it (for memory mapping). */
    private static final int ARRAY_ALIGN = 64;
    /**
     * np.save leaves room for the first dimension to grow to this many digits, so the header can be
     * rewritten in place when appending; copied so that our files are byte-identical to numpy's.
     */
    private static final int GROWTH_AXIS_MAX_DIGITS = 21;
    /**
     * Real headers are well under a kilobyte; a larger length field means a corrupt or hostile file,
     * and refusing it keeps a bad file from making us allocate gigabytes for the header.
     */
    static final int MAX_HEADER_BYTES = 1 << 20;
    /** Messages quote at most this much of the file's own text (header, descr, keys). */
    private static final int MAX_EXCERPT_CHARS = 200;
    /** Messages list at most this many dimensions of a shape. */
    private static final int MAX_EXCERPT_DIMENSIONS = 8;
    private static final String BFLOAT16_BITS_DESCR = "<u2";
    private static final Set<String> HEADER_KEYS = Set.of("descr", "fortran_order", "shape");

    private Npy() {}

    /** Reads a {@code .npy} file of any dtype {@link DType} has a numpy dtype for. */
    public static Tensor read(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            Header header = readHeader(file, channel);
            DType dtype = dtypeForDescr(file, header.descr);
            return readData(file, channel, header, dtype);
        }
    }

    /** Reads bfloat16 values stored as their raw bits under dtype {@code '<u2'}. */
    public static Tensor readBfloat16FromUint16(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            Header header = readHeader(file, channel);
            if (!header.descr.equals(BFLOAT16_BITS_DESCR)) {
                throw new NpyFormatException(file, "expected bfloat16 bits stored as dtype '" + BFLOAT16_BITS_DESCR
                        + "', found '" + excerpt(header.descr) + "'");
            }
            return readData(file, channel, header, DType.BFLOAT16);
        }
    }

    /**
     * Writes {@code tensor} as numpy would save it, atomically: into a temporary file in the same
     * directory, then moved over {@code file}, so that a reader never sees a partly written file.
     *
     * @throws IllegalArgumentException for a BFLOAT16 tensor, which has no numpy dtype
     */
    public static void write(Path file, Tensor tensor) throws IOException {
        String descr = tensor.dtype().numpyDescr().orElseThrow(() -> new IllegalArgumentException(
                "cannot write " + tensor + " to " + file + ": numpy has no bfloat16 dtype;"
                        + " cast to float32 first, or use Npy.writeBfloat16AsUint16 to keep the raw bits"));
        writeAtomically(file, descr, tensor);
    }

    /** Writes a BFLOAT16 tensor's raw bits under dtype {@code '<u2'}; see {@link DType}. */
    public static void writeBfloat16AsUint16(Path file, Tensor tensor) throws IOException {
        if (tensor.dtype() != DType.BFLOAT16) {
            throw new IllegalArgumentException("writeBfloat16AsUint16 writes bfloat16 tensors, got " + tensor);
        }
        writeAtomically(file, BFLOAT16_BITS_DESCR, tensor);
    }

    /** The parsed header and where the data starts. */
    private record Header(String descr, long[] shape, long dataOffset) {}

    private static Header readHeader(Path file, FileChannel channel) throws IOException {
        int prefixLength = MAGIC.length + 2; // magic, major and minor version
        ByteBuffer prefix = readFully(file, channel, 0, (int) Math.min(channel.size(), prefixLength), "the magic");
        if (prefix.limit() < MAGIC.length || !prefix.slice(0, MAGIC.length).equals(ByteBuffer.wrap(MAGIC))) {
            throw new NpyFormatException(file, "not a .npy file (it does not start with \\x93NUMPY)");
        }
        if (prefix.limit() < prefixLength) {
            throw new NpyFormatException(file, "truncated: the file ended while reading the format version");
        }
        int major = prefix.get(MAGIC.length) & 0xff;
        int minor = prefix.get(MAGIC.length + 1) & 0xff;
        int lengthFieldSize;
        if (major == 1 && minor == 0) {
            lengthFieldSize = 2;
        } else if ((major == 2 || major == 3) && minor == 0) {
            lengthFieldSize = 4;
        } else {
            throw new NpyFormatException(file, "unsupported .npy format version " + major + "." + minor
                    + " (supported: 1.0, 2.0, 3.0)");
        }
        ByteBuffer lengthField = readFully(file, channel, prefixLength, lengthFieldSize, "the header length");
        long headerLength = lengthFieldSize == 2
                ? lengthField.getShort() & 0xffff
                : lengthField.getInt() & 0xffff_ffffL;
        if (headerLength > MAX_HEADER_BYTES) {
            throw new NpyFormatException(file, "header of " + headerLength + " bytes is too long (limit "
                    + MAX_HEADER_BYTES + "); the file is corrupt or not a .npy file");
        }
        long headerStart = prefixLength + lengthFieldSize;
        long afterLengthField = Math.max(channel.size() - headerStart, 0);
        if (headerLength > afterLengthField) {
            throw new NpyFormatException(file, "truncated: the file ended while reading the header (its length field says "
                    + headerLength + " bytes, " + afterLengthField + " follow)");
        }
        ByteBuffer headerBytes = readFully(file, channel, headerStart, (int) headerLength, "the header");
        // Versions 1.0 and 2.0 define the header as latin-1; 3.0 as UTF-8.
        String text = (major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1).decode(headerBytes).toString();
        return parseHeader(file, text, headerStart + headerLength);
    }

    private static Header parseHeader(Path file, String text, long dataOffset) throws NpyFormatException {
        Map<String, Object> dict;
        try {
            dict = new HeaderParser(text).parseDict();
        } catch (IllegalArgumentException e) {
            throw new NpyFormatException(file, "cannot parse header " + quote(text) + ": " + e.getMessage());
        }
        if (!dict.keySet().equals(HEADER_KEYS)) {
            throw new NpyFormatException(file, "header has keys " + excerpt(dict.keySet().toString())
                    + ", expected exactly descr, fortran_order and shape: " + quote(text));
        }
        Object descrValue = dict.get("descr");
        if (descrValue instanceof StructuredDescr structured) {
            throw new NpyFormatException(file, "unsupported dtype " + excerpt(structured.text())
                    + ": structured dtypes are not supported, only plain numeric ones");
        }
        if (!(descrValue instanceof String descr)) {
            throw new NpyFormatException(file, "descr is not a dtype string: " + quote(text));
        }
        if (!(dict.get("fortran_order") instanceof Boolean fortranOrder)) {
            throw new NpyFormatException(file, "fortran_order is not True or False: " + quote(text));
        }
        if (fortranOrder) {
            throw new NpyFormatException(file, "array is stored in Fortran (column-major) order;"
                    + " only C order is supported (save np.ascontiguousarray(a) instead)");
        }
        if (!(dict.get("shape") instanceof long[] shape)) {
            throw new NpyFormatException(file, "shape is not a tuple of integers: " + quote(text));
        }
        return new Header(descr, shape, dataOffset);
    }

    /**
     * The DType of a descr such as '<f4': a byte-order character ('<' little, '>' big, '|' not
     * applicable) followed by the type code and size.
     */
    private static DType dtypeForDescr(Path file, String descr) throws NpyFormatException {
        if (!descr.isEmpty()) {
            char byteOrder = descr.charAt(0);
            String typeCode = descr.substring(1);
            for (DType dtype : DType.values()) {
                String known = dtype.numpyDescr().orElse(null);
                if (known == null || !known.substring(1).equals(typeCode)) {
                    continue;
                }
                // One-byte types have no byte order: numpy writes '|', but '<' and '>' mean the same.
                if (byteOrder == '<' || dtype.byteSize() == 1 && "<>|".indexOf(byteOrder) >= 0) {
                    return dtype;
                }
                if (byteOrder == '>') {
                    throw new NpyFormatException(file, "dtype '" + excerpt(descr) + "' is big-endian; only little-endian"
                            + " is supported (save a.astype(a.dtype.newbyteorder('<')) instead)");
                }
            }
        }
        throw new NpyFormatException(file, "unsupported dtype '" + excerpt(descr) + "'; supported: " + supportedDescrs());
    }

    private static String supportedDescrs() {
        List<String> descrs = new ArrayList<>();
        for (DType dtype : DType.values()) {
            dtype.numpyDescr().ifPresent(descr -> descrs.add("'" + descr + "' (" + dtype.displayName() + ")"));
        }
        return String.join(", ", descrs);
    }

    private static Tensor readData(Path file, FileChannel channel, Header header, DType dtype) throws IOException {
        String array = dtype.displayName() + " " + shapeExcerpt(header.shape);
        long dataBytes = dataByteCount(file, array, header.shape, dtype);
        // Checked against the file before anything is allocated, so that a small file whose header
        // claims gigabytes fails here instead of with an OutOfMemoryError.
        long available = channel.size() - header.dataOffset;
        if (available < dataBytes) {
            throw new NpyFormatException(file, String.format(
                    "truncated: %s needs %d data bytes, the file has %d after the header",
                    array, dataBytes, Math.max(available, 0)));
        }
        if (available > dataBytes) {
            throw new NpyFormatException(file, String.format(
                    "%d bytes follow the data of %s (%d bytes); the header does not describe this file",
                    available - dataBytes, array, dataBytes));
        }
        if (dataBytes > Integer.MAX_VALUE) {
            throw new NpyFormatException(file, String.format(
                    "cannot hold the array: %s is %d bytes, more than the 2 GiB a single tensor can hold",
                    array, dataBytes));
        }
        Tensor tensor = Tensor.allocate(dtype, header.shape);
        ByteBuffer target = tensor.buffer();
        long position = header.dataOffset;
        while (target.hasRemaining()) {
            int read = channel.read(target, position);
            if (read < 0) {
                throw new NpyFormatException(file, "truncated: the file ended while reading the data");
            }
            position += read;
        }
        return tensor;
    }

    /**
     * product(shape) × itemsize, multiplied in {@link Tensor#numElements}'s order so that every shape
     * accepted here is one Tensor accepts.
     */
    private static long dataByteCount(Path file, String array, long[] shape, DType dtype) throws NpyFormatException {
        for (int axis = 0; axis < shape.length; axis++) {
            if (shape[axis] < 0) {
                throw new NpyFormatException(file, String.format(
                        "%s has a negative dimension %d at axis %d", array, shape[axis], axis));
            }
        }
        try {
            long elements = 1;
            for (long dim : shape) {
                elements = Math.multiplyExact(elements, dim);
            }
            return Math.multiplyExact(elements, dtype.byteSize());
        } catch (ArithmeticException overflow) {
            throw new NpyFormatException(file, array + " has more bytes than a 64-bit size can count;"
                    + " the header is corrupt");
        }
    }

    private static ByteBuffer readFully(Path file, FileChannel channel, long position, int length, String what)
            throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            int read = channel.read(buffer, position + buffer.position());
            if (read < 0) {
                throw new NpyFormatException(file, "truncated: the file ended while reading " + what);
            }
        }
        return buffer.flip();
    }

    private static void writeAtomically(Path file, String descr, Tensor tensor) throws IOException {
        AtomicFiles.write(file, temp -> {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer header = ByteBuffer.wrap(headerBytes(descr, tensor.shape()));
                ByteBuffer data = tensor.buffer();
                while (header.hasRemaining() || data.hasRemaining()) {
                    channel.write(new ByteBuffer[] {header, data});
                }
            }
        });
    }

    /** Magic, version, length and header, laid out byte for byte as numpy's np.save does. */
    static byte[] headerBytes(String descr, long[] shape) {
        StringBuilder dict = new StringBuilder("{'descr': '").append(descr)
                .append("', 'fortran_order': False, 'shape': ").append(pythonTuple(shape)).append(", }");
        if (shape.length > 0) {
            dict.append(" ".repeat(GROWTH_AXIS_MAX_DIGITS - Long.toString(shape[0]).length()));
        }
        byte[] text = dict.toString().getBytes(StandardCharsets.ISO_8859_1);

        int lengthFieldSize = 2;
        int paddedLength = paddedHeaderLength(text.length, lengthFieldSize);
        if (paddedLength > 0xffff) {
            lengthFieldSize = 4;
            paddedLength = paddedHeaderLength(text.length, lengthFieldSize);
        }
        ByteBuffer out = ByteBuffer.allocate(MAGIC.length + 2 + lengthFieldSize + paddedLength)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).put((byte) (lengthFieldSize == 2 ? 1 : 2)).put((byte) 0);
        if (lengthFieldSize == 2) {
            out.putShort((short) paddedLength);
        } else {
            out.putInt(paddedLength);
        }
        out.put(text);
        while (out.position() < out.limit() - 1) {
            out.put((byte) ' ');
        }
        out.put((byte) '\n');
        return out.array();
    }

    /**
     * Header length after numpy's padding: spaces plus a final newline so that magic, version,
     * length field and header end on a 64-byte boundary. Like numpy, pads by a full 64 rather than 0
     * when the text plus newline already ends on a boundary.
     */
    private static int paddedHeaderLength(int textLength, int lengthFieldSize) {
        int withNewline = textLength + 1;
        int padding = ARRAY_ALIGN - (MAGIC.length + 2 + lengthFieldSize + withNewline) % ARRAY_ALIGN;
        return withNewline + padding;
    }

    /** Python's repr of a tuple of ints: "()", "(5,)", "(2, 3)". */
    private static String pythonTuple(long[] shape) {
        if (shape.length == 1) {
            return "(" + shape[0] + ",)";
        }
        StringBuilder tuple = new StringBuilder("(");
        for (int axis = 0; axis < shape.length; axis++) {
            tuple.append(axis == 0 ? "" : ", ").append(shape[axis]);
        }
        return tuple.append(')').toString();
    }

    private static String quote(String headerText) {
        return '"' + excerpt(headerText.strip()) + '"';
    }

    /**
     * Text from the file as a message shows it: control characters escaped, and cut to {@value
     * #MAX_EXCERPT_CHARS} characters, since a corrupt header can be a megabyte of anything.
     */
    private static String excerpt(String text) {
        int shown = Math.min(text.length(), MAX_EXCERPT_CHARS);
        StringBuilder excerpt = new StringBuilder(shown + 32);
        for (int i = 0; i < shown; i++) {
            char c = text.charAt(i);
            if (c == '\n') {
                excerpt.append("\\n");
            } else if (Character.isISOControl(c)) {
                excerpt.append(String.format("\\x%02x", (int) c));
            } else {
                excerpt.append(c);
            }
        }
        if (shown < text.length()) {
            excerpt.append("... (").append(text.length()).append(" characters)");
        }
        return excerpt.toString();
    }

    /** The shape as {@link Tensor#formatShape} writes it, cut after {@value #MAX_EXCERPT_DIMENSIONS} dimensions. */
    private static String shapeExcerpt(long[] shape) {
        if (shape.length <= MAX_EXCERPT_DIMENSIONS) {
            return Tensor.formatShape(shape);
        }
        return Tensor.formatShape(Arrays.copyOf(shape, MAX_EXCERPT_DIMENSIONS)).replace("]", ", ... ("
                + shape.length + " dimensions)]");
    }

    /**
     * Parses the subset of Python literals a .npy header uses: a dict with string keys whose values
     * are strings (either quote), True/False, or tuples of integers (Python 2 wrote them with an L
     * suffix). Whitespace and trailing commas go anywhere Python allows them. A list value (a
     * structured dtype) is returned as {@link StructuredDescr} so that the caller can report it.
     */
    private record StructuredDescr(String text) {
        @Override
        public String toString() {
            return text;
        }
    }

    private static final class HeaderParser {
        private final String text;
        private int pos;

        HeaderParser(String text) {
            this.text = text;
        }

        Map<String, Object> parseDict() {
            Map<String, Object> dict = new LinkedHashMap<>();
            expect('{');
            while (!tryConsume('}')) {
                String key = parseString();
                expect(':');
                Object value = parseValue();
                if (dict.put(key, value) != null) {
                    throw new IllegalArgumentException("key '" + excerpt(key) + "' appears twice");
                }
                if (!tryConsume(',')) {
                    expect('}');
                    break;
                }
            }
            skipWhitespace();
            if (pos != text.length()) {
                throw new IllegalArgumentException("unexpected text after the closing brace at offset " + pos);
            }
            return dict;
        }

        private Object parseValue() {
            skipWhitespace();
            if (pos >= text.length()) {
                throw new IllegalArgumentException("header ends where a value should be");
            }
            char c = text.charAt(pos);
            if (c == '\'' || c == '"') {
                return parseString();
            }
            if (c == '(') {
                return parseIntTuple();
            }
            if (c == '[') {
                return parseList();
            }
            if (text.startsWith("True", pos)) {
                pos += 4;
                return Boolean.TRUE;
            }
            if (text.startsWith("False", pos)) {
                pos += 5;
                return Boolean.FALSE;
            }
            throw new IllegalArgumentException("unexpected '" + c + "' at offset " + pos);
        }

        private String parseString() {
            skipWhitespace();
            char quote = pos < text.length() ? text.charAt(pos) : 0;
            if (quote != '\'' && quote != '"') {
                throw new IllegalArgumentException("expected a quoted string at offset " + pos);
            }
            int end = text.indexOf(quote, pos + 1);
            if (end < 0) {
                throw new IllegalArgumentException("unterminated string at offset " + pos);
            }
            String value = text.substring(pos + 1, end);
            pos = end + 1;
            return value;
        }

        private long[] parseIntTuple() {
            expect('(');
            List<Long> values = new ArrayList<>();
            while (!tryConsume(')')) {
                values.add(parseInt());
                if (!tryConsume(',')) {
                    expect(')');
                    break;
                }
            }
            return values.stream().mapToLong(Long::longValue).toArray();
        }

        private long parseInt() {
            skipWhitespace();
            int start = pos;
            if (pos < text.length() && text.charAt(pos) == '-') {
                pos++;
            }
            int digitsStart = pos;
            // ASCII digits only, as in a Python literal (Character.isDigit would take any script's).
            while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
                pos++;
            }
            if (pos == digitsStart) {
                throw new IllegalArgumentException("expected an integer at offset " + start);
            }
            String digits = text.substring(start, pos);
            if (pos < text.length() && (text.charAt(pos) == 'L' || text.charAt(pos) == 'l')) {
                pos++;
            }
            try {
                return Long.parseLong(digits);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("integer at offset " + start + " does not fit in 64 bits");
            }
        }

        /** Lists only appear as structured dtype descriptions; kept as raw text to report. */
        private StructuredDescr parseList() {
            int start = pos;
            int depth = 0;
            do {
                char c = text.charAt(pos++);
                if (c == '[') {
                    depth++;
                } else if (c == ']') {
                    depth--;
                }
            } while (depth > 0 && pos < text.length());
            if (depth > 0) {
                throw new IllegalArgumentException("unterminated list at offset " + start);
            }
            return new StructuredDescr(text.substring(start, pos));
        }

        private void expect(char expected) {
            if (!tryConsume(expected)) {
                throw new IllegalArgumentException("expected '" + expected + "' at offset " + pos);
            }
        }

        private boolean tryConsume(char expected) {
            skipWhitespace();
            if (pos < text.length() && text.charAt(pos) == expected) {
                pos++;
                return true;
            }
            return false;
        }

        private void skipWhitespace() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                pos++;
            }
        }
    }
}
