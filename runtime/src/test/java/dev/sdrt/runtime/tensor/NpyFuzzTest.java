package dev.sdrt.runtime.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.ForkedJvm;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutation fuzzing of {@link Npy}'s reader: numpy's files (the fixtures) and small hand-made
 * ones of every dtype, bit-flipped, cut, stretched, given other header lengths and versions, and
 * given rewritten header dicts with hostile shapes, dtypes and junk. Every mutant must either read,
 * with exactly the bytes its shape needs, or fail with an {@link NpyFormatException} whose message
 * is short and says something; any other exception or error is a bug.
 *
 * <p>The seed is fixed so that a failure reproduces; each reported failure names its mutation and
 * the mutant's first bytes.
 */
class NpyFuzzTest {

    private static final long SEED = 0x5D27_0A1F_2024L;
    private static final int MUTANTS = 5_000;
    /** Written out for the small-heap run, which is slower per file (a JVM of its own, cold). */
    private static final int SMALL_HEAP_MUTANTS = 1_000;
    private static final int MAX_MESSAGE_CHARS = 1_000;
    /**
     * Far below the 2 GiB and more that hostile headers claim, and below what the test JVM allows, but
     * ample for files of a few kilobytes and headers of up to {@link Npy#MAX_HEADER_BYTES}.
     */
    static final List<String> SMALL_HEAP = List.of("-Xmx64m", "-XX:MaxDirectMemorySize=16m");

    /** A header that claims 2 GiB of float32 (2^29 - 1 elements, just under a buffer's limit). */
    private static final String TWO_GIB_SHAPE = "(536870911,)";

    private static final String[] HOSTILE_SHAPES = {
        TWO_GIB_SHAPE, "(2147483647, 2147483647)", "(1099511627776,)", "(-1,)", "(2, -3)",
        "(-9223372036854775808,)", "(9223372036854775807,)", "(99999999999999999999,)", "(0,)", "()",
        "(0, 9223372036854775807, 9223372036854775807)", "(3037000500, 3037000500)", "(4611686018427387904, 2)",
        "(268435456, 8)", "(1, 2, 3)", "(2, 3)", "(4,)", "(1.5,)", "(1, 2", "'x'", "(True,)", "(\u0663,)",
        "(1_000,)", "(+1,)", "(0x10,)", "((1,),)", "(" + "1, ".repeat(2_000) + ")", "(".repeat(2_000),
        "[1, 2]", "{'a': 1}", "None", "(1L, 2L)", "(1 2)", "(,)",
    };

    private static final String[] DESCRS = {
        "'<f4'", "'<f2'", "'<f8'", "'<i8'", "'<i4'", "'|i1'", "'|u1'", "'|b1'", "'<u2'", "'>f4'", "'>i8'",
        "'<c8'", "'<U3'", "'|V2'", "'O'", "''", "'<'", "'f4'", "'<f4<f4'", "\"<f4\"", "'<f4", "7", "(1, 2)",
        "True", "[('a', '<f4'), ('b', '<i4')]", "[".repeat(5_000), "[".repeat(1_000) + "]".repeat(1_000),
        "'" + "x".repeat(5_000) + "'", "'\u0000\u0001\n\u00ff'",
    };

    private static final String[] FORTRAN_ORDERS = {"False", "True", "0", "1", "None", "'False'", "''", "Fals"};

    private static final byte[] INTERESTING_BYTES = {
        0, 1, -1, 0x7f, (byte) 0x80, (byte) 0x93, '\n', ' ', '{', '}', '(', ')', ',', ':', '\'', '"', '-', '0', '9', 'L',
    };

    @TempDir
    Path temp;

    @Test
    void mutatedFilesReadOrFailWithAShortNpyFormatException() throws IOException {
        List<byte[]> seeds = seeds();
        Random random = new Random(SEED);
        Path file = temp.resolve("mutant.npy");
        List<String> failures = new ArrayList<>();
        int reads = 0;
        for (int i = 0; i < MUTANTS; i++) {
            Mutant mutant = mutate(seeds, random);
            Files.write(file, mutant.bytes);
            List<String> problems = new ArrayList<>();
            reads += check(file, problems);
            for (String problem : problems) {
                failures.add("mutant " + i + " (" + mutant.description + "): " + problem + "; starts "
                        + Base64.getEncoder().encodeToString(Arrays.copyOf(mutant.bytes, Math.min(mutant.bytes.length, 256))));
            }
        }
        assertThat(failures).as("seed %x", SEED).isEmpty();
        // Most mutants are broken, as they should be, but some must still read, or the checks on a
        // good result would go untested.
        assertThat(reads).as("reads, of %d tries", 2 * MUTANTS).isGreaterThan(MUTANTS / 100);
    }

    /**
     * The same under a heap and direct-memory limit far below what the hostile headers claim, so that
     * a read which allocates what the header says before checking the file would fail here with an
     * OutOfMemoryError even where the test JVM's large heap lets it through.
     */
    @Test
    void mutatedFilesFitASmallHeap() throws Exception {
        List<byte[]> seeds = seeds();
        Random random = new Random(SEED + 1);
        Path corpus = Files.createDirectory(temp.resolve("corpus"));
        List<Mutant> mutants = new ArrayList<>(hostileHeaders(seeds.get(0)));
        for (int i = 0; i < SMALL_HEAP_MUTANTS; i++) {
            mutants.add(mutate(seeds, random));
        }
        for (int i = 0; i < mutants.size(); i++) {
            Files.write(corpus.resolve(String.format("%05d.npy", i)), mutants.get(i).bytes);
        }

        ForkedJvm.Result result = ForkedJvm.run(NpyFuzzTest.class, SMALL_HEAP, List.of(corpus.toString()));

        assertThat(result.exitCode()).as(result.output()).isZero();
        List<String> failures = new ArrayList<>();
        for (String line : result.output().lines().toList()) {
            String[] fields = line.split("\t", 2);
            int index = fields[0].matches("\\d{5}\\.npy") ? Integer.parseInt(fields[0].substring(0, 5)) : -1;
            failures.add(index < 0 ? line : line + " (" + mutants.get(index).description + ")");
        }
        assertThat(failures).as("seed %x", SEED + 1).containsExactly("checked " + mutants.size() + " files");
    }

    /**
     * In a forked JVM: checks every file of the directory {@code args[0]} as the in-process test does,
     * printing a line "file TAB problem" for each problem found, then "checked N files".
     */
    public static void main(String[] args) throws IOException {
        List<Path> files;
        try (Stream<Path> entries = Files.list(Path.of(args[0]))) {
            files = entries.sorted().toList();
        }
        for (Path file : files) {
            List<String> problems = new ArrayList<>();
            check(file, problems);
            for (String problem : problems) {
                System.out.println(file.getFileName() + "\t" + problem);
            }
        }
        System.out.println("checked " + files.size() + " files");
    }

    /**
     * Reads {@code file} with both readers (any dtype, bfloat16 bits), adding to {@code problems}
     * whatever is wrong with the outcome; returns how many of the two read it.
     */
    static int check(Path file, List<String> problems) throws IOException {
        long fileSize = Files.size(file);
        int reads = 0;
        for (boolean bfloat16 : new boolean[] {false, true}) {
            try {
                Tensor tensor = bfloat16 ? Npy.readBfloat16FromUint16(file) : Npy.read(file);
                reads++;
                long needed = Tensor.numElements(tensor.shape()) * tensor.dtype().byteSize();
                if (tensor.byteSize() != needed || tensor.byteSize() > fileSize) {
                    problems.add("read " + tensor + " holding " + tensor.byteSize() + " bytes from a file of " + fileSize);
                }
            } catch (NpyFormatException e) {
                String message = e.getMessage();
                if (!message.startsWith(file + ": ") || message.substring(file.toString().length() + 2).isBlank()
                        || message.length() >= MAX_MESSAGE_CHARS) {
                    problems.add("NpyFormatException message of " + message.length() + " characters: "
                            + message.substring(0, Math.min(message.length(), 300)));
                }
            } catch (IOException | RuntimeException | Error e) {
                problems.add("threw " + e);
            }
        }
        return reads;
    }

    // ---- the files mutated ----

    private record Mutant(String description, byte[] bytes) {}

    /** numpy's files (the fixtures) and hand-made ones: every dtype, header versions 1.0 to 3.0. */
    private List<byte[]> seeds() throws IOException {
        List<byte[]> seeds = new ArrayList<>();
        List<Tensor> tensors = List.of(
                Tensor.ofFloats(new long[] {2, 3}, new float[] {1, -2, 3.5f, 0, Float.NaN, 1e-30f}),
                Tensor.ofLongs(new long[] {4}, new long[] {0, -1, Long.MAX_VALUE, 77}),
                Tensor.ofFloats(new long[] {3}, new float[] {1.5f, -2, 65504}).castTo(DType.FLOAT16),
                Tensor.ofInts(new long[] {0, 3}, new int[0]),
                Tensor.zeros(DType.BOOL, 2, 2),
                Tensor.zeros(DType.UINT8),
                Tensor.zeros(DType.INT8, 2),
                Tensor.zeros(DType.FLOAT64, 1, 1, 1));
        for (int i = 0; i < tensors.size(); i++) {
            Path file = temp.resolve("seed" + i + ".npy");
            Npy.write(file, tensors.get(i));
            seeds.add(Files.readAllBytes(file));
        }
        Path bfloat16 = temp.resolve("bf16.npy");
        Npy.writeBfloat16AsUint16(bfloat16, Tensor.zeros(DType.FLOAT32, 3).castTo(DType.BFLOAT16));
        seeds.add(Files.readAllBytes(bfloat16));
        for (int major : new int[] {2, 3}) {
            seeds.add(npyFile(major, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                    new byte[16], true));
        }
        try (Stream<Path> files = Files.walk(Fixtures.dir())) {
            for (Path fixture : files.filter(path -> path.toString().endsWith(".npy")).sorted().toList()) {
                seeds.add(Files.readAllBytes(fixture));
            }
        }
        return seeds;
    }

    /** Header dicts with each hostile shape and descr, around the first seed's data and sized data. */
    private static List<Mutant> hostileHeaders(byte[] seed) {
        byte[] data = Arrays.copyOfRange(seed, dataOffset(seed), seed.length);
        List<Mutant> mutants = new ArrayList<>();
        for (String shape : HOSTILE_SHAPES) {
            for (String descr : new String[] {"'<f4'", "'|u1'", "'<f8'", "'<u2'"}) {
                String header = "{'descr': " + descr + ", 'fortran_order': False, 'shape': " + shape + ", }";
                mutants.add(new Mutant("shape " + excerpt(shape) + " descr " + descr, npyFile(1, header, data, true)));
                mutants.add(new Mutant("shape " + excerpt(shape) + " descr " + descr + ", 8 KB of data",
                        npyFile(2, header, new byte[8192], true)));
            }
        }
        for (String descr : DESCRS) {
            String header = "{'descr': " + descr + ", 'fortran_order': False, 'shape': (6,), }";
            mutants.add(new Mutant("descr " + excerpt(descr), npyFile(1, header, new byte[24], true)));
        }
        String spaces = " ".repeat(Npy.MAX_HEADER_BYTES - 128);
        mutants.add(new Mutant("header of nearly MAX_HEADER_BYTES, mostly spaces",
                npyFile(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (" + spaces + "1,)}", new byte[4], true)));
        return mutants;
    }

    // ---- mutations ----

    private static Mutant mutate(List<byte[]> seeds, Random random) {
        byte[] seed = seeds.get(random.nextInt(seeds.size()));
        int operations = 1 + random.nextInt(random.nextInt(4) == 0 ? 3 : 1);
        StringBuilder description = new StringBuilder();
        byte[] bytes = seed;
        for (int i = 0; i < operations; i++) {
            int operation = random.nextInt(12);
            description.append(i == 0 ? "" : ", ");
            bytes = switch (operation) {
                case 0 -> flipBits(bytes, random, description);
                case 1 -> setByte(bytes, random, description);
                case 2 -> insertBytes(bytes, random, description);
                case 3 -> deleteBytes(bytes, random, description);
                case 4 -> truncate(bytes, random, description);
                case 5 -> append(bytes, random, description);
                case 6 -> setVersion(bytes, random, description);
                case 7, 8 -> setHeaderLength(bytes, random, description);
                case 9, 10 -> rewriteHeader(bytes, random, description);
                default -> spliceHeader(bytes, seeds.get(random.nextInt(seeds.size())), random, description);
            };
        }
        return new Mutant(description.toString(), bytes);
    }

    /** A position, three times in four inside the first 128 bytes (magic, lengths and header). */
    private static int position(byte[] bytes, Random random) {
        int bound = random.nextInt(4) == 0 ? bytes.length : Math.min(bytes.length, 128);
        return bound == 0 ? 0 : random.nextInt(bound);
    }

    private static byte[] flipBits(byte[] bytes, Random random, StringBuilder description) {
        byte[] mutated = bytes.clone();
        int flips = 1 + random.nextInt(4);
        description.append("flip ").append(flips).append(" bits at");
        for (int i = 0; i < flips && mutated.length > 0; i++) {
            int at = position(mutated, random);
            mutated[at] ^= (byte) (1 << random.nextInt(8));
            description.append(' ').append(at);
        }
        return mutated;
    }

    private static byte[] setByte(byte[] bytes, Random random, StringBuilder description) {
        if (bytes.length == 0) {
            description.append("set no byte of an empty file");
            return bytes;
        }
        byte[] mutated = bytes.clone();
        int at = position(mutated, random);
        mutated[at] = interestingByte(random);
        description.append("byte ").append(at).append(" = ").append(mutated[at]);
        return mutated;
    }

    private static byte[] insertBytes(byte[] bytes, Random random, StringBuilder description) {
        int at = position(bytes, random);
        byte[] inserted = new byte[1 + random.nextInt(8)];
        for (int i = 0; i < inserted.length; i++) {
            inserted[i] = interestingByte(random);
        }
        description.append("insert ").append(Arrays.toString(inserted)).append(" at ").append(at);
        return concat(Arrays.copyOf(bytes, at), inserted, Arrays.copyOfRange(bytes, at, bytes.length));
    }

    private static byte[] deleteBytes(byte[] bytes, Random random, StringBuilder description) {
        int at = position(bytes, random);
        int count = Math.min(1 + random.nextInt(16), bytes.length - at);
        description.append("delete ").append(count).append(" bytes at ").append(at);
        return concat(Arrays.copyOf(bytes, at), Arrays.copyOfRange(bytes, at + count, bytes.length));
    }

    private static byte[] truncate(byte[] bytes, Random random, StringBuilder description) {
        int length = bytes.length == 0 ? 0 : random.nextInt(bytes.length);
        description.append("truncate to ").append(length);
        return Arrays.copyOf(bytes, length);
    }

    private static byte[] append(byte[] bytes, Random random, StringBuilder description) {
        int count = 1 + random.nextInt(64);
        description.append("append ").append(count).append(" bytes");
        return Arrays.copyOf(bytes, bytes.length + count);
    }

    private static byte[] setVersion(byte[] bytes, Random random, StringBuilder description) {
        if (bytes.length < 8) {
            return truncate(bytes, random, description);
        }
        byte[] mutated = bytes.clone();
        int[] versions = {0, 1, 2, 3, 4, 255};
        mutated[6] = (byte) versions[random.nextInt(versions.length)];
        mutated[7] = (byte) (random.nextInt(4) == 0 ? versions[random.nextInt(versions.length)] : 0);
        description.append("version ").append(mutated[6] & 0xff).append('.').append(mutated[7] & 0xff);
        return mutated;
    }

    /** Overwrites the length field as version 1.0 (2 bytes) or 2.0/3.0 (4 bytes) lays it out. */
    private static byte[] setHeaderLength(byte[] bytes, Random random, StringBuilder description) {
        if (bytes.length < 12) {
            return append(bytes, random, description);
        }
        byte[] mutated = bytes.clone();
        boolean wide = mutated[6] == 2 || mutated[6] == 3;
        long actual = wide ? ByteBuffer.wrap(mutated, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffff_ffffL
                : ByteBuffer.wrap(mutated, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort() & 0xffff;
        long[] lengths = {0, 1, actual - 1, actual + 1, actual - 64, actual + 64, 0xffff, Npy.MAX_HEADER_BYTES,
            Npy.MAX_HEADER_BYTES + 1, mutated.length, mutated.length - 9, 0x7fff_ffffL, 0xffff_ffffL,
            random.nextInt(1 << 16)};
        long length = lengths[random.nextInt(lengths.length)];
        ByteBuffer field = ByteBuffer.wrap(mutated, 8, wide ? 4 : 2).order(ByteOrder.LITTLE_ENDIAN);
        if (wide) {
            field.putInt((int) length);
        } else {
            field.putShort((short) length);
        }
        description.append("header length ").append(wide ? length & 0xffff_ffffL : length & 0xffff);
        return mutated;
    }

    /** A new header dict, from hostile parts as often as from good ones, around the old data or new. */
    private static byte[] rewriteHeader(byte[] bytes, Random random, StringBuilder description) {
        String descr = random.nextBoolean() ? "'<f4'" : pick(DESCRS, random);
        String fortranOrder = random.nextInt(3) > 0 ? "False" : pick(FORTRAN_ORDERS, random);
        String shape = random.nextBoolean() ? smallShape(random) : pick(HOSTILE_SHAPES, random);
        List<String> entries = new ArrayList<>(List.of(
                "'descr': " + descr, "'fortran_order': " + fortranOrder, "'shape': " + shape));
        String layout;
        switch (random.nextInt(10)) {
            case 0 -> {
                entries.add("'extra': True");
                layout = "extra key";
            }
            case 1 -> {
                entries.remove(random.nextInt(entries.size()));
                layout = "missing key";
            }
            case 2 -> {
                entries.add(entries.get(random.nextInt(entries.size())));
                layout = "duplicate key";
            }
            case 3 -> {
                entries.add(random.nextInt(entries.size()), "'" + "k".repeat(random.nextInt(5_000)) + "': {'nested': [(]}");
                layout = "junk key";
            }
            case 4 -> {
                Collections.shuffle(entries, random);
                layout = "shuffled";
            }
            default -> layout = "plain";
        }
        String dict = "{" + String.join(", ", entries) + (random.nextBoolean() ? ", }" : "}")
                + (random.nextInt(8) == 0 ? " junk" : "");
        if (random.nextInt(10) == 0) {
            dict = "{".repeat(1 + random.nextInt(2_000));
            layout = "open braces";
        }
        byte[] data;
        if (random.nextBoolean()) {
            data = Arrays.copyOfRange(bytes, dataOffset(bytes), bytes.length);
        } else {
            data = new byte[random.nextInt(4) == 0 ? random.nextInt(9000) : sizedData(shape, descr)];
        }
        int major = 1 + random.nextInt(3);
        description.append("header v").append(major).append(' ').append(layout).append(' ').append(excerpt(dict))
                .append(" with ").append(data.length).append(" data bytes");
        return npyFile(major, dict, data, random.nextInt(5) > 0);
    }

    /** This file's data after another seed's magic, version, length and header. */
    private static byte[] spliceHeader(byte[] bytes, byte[] other, Random random, StringBuilder description) {
        int cut = dataOffset(other);
        int from = random.nextBoolean() ? dataOffset(bytes) : position(bytes, random);
        description.append("header of another seed (").append(cut).append(" bytes) before this one's bytes from ")
                .append(from);
        return concat(Arrays.copyOf(other, cut), Arrays.copyOfRange(bytes, from, bytes.length));
    }

    private static String smallShape(Random random) {
        int rank = random.nextInt(5);
        StringBuilder shape = new StringBuilder("(");
        for (int axis = 0; axis < rank; axis++) {
            shape.append(random.nextInt(7)).append(rank == 1 ? "," : axis + 1 < rank ? ", " : "");
        }
        return shape.append(')').toString();
    }

    /** Bytes of a small well-formed shape of a known descr, so that some rewrites read; else 0. */
    private static int sizedData(String shape, String descr) {
        int itemSize = switch (descr) {
            case "'<f8'", "'<i8'" -> 8;
            case "'<f4'", "'<i4'" -> 4;
            case "'<f2'", "'<u2'" -> 2;
            default -> 1;
        };
        if (!shape.matches("\\(([0-6], )*[0-6]?,?\\)")) {
            return 0;
        }
        int elements = 1;
        for (String dim : shape.replaceAll("[(),]", " ").trim().split("\\s+")) {
            elements *= dim.isEmpty() ? 1 : Integer.parseInt(dim);
        }
        return elements * itemSize;
    }

    private static byte interestingByte(Random random) {
        return random.nextBoolean() ? INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)] : (byte) random.nextInt();
    }

    private static String pick(String[] options, Random random) {
        return options[random.nextInt(options.length)];
    }

    // ---- file layout ----

    /** Where the data starts by the file's own length field; past the end when that is garbage. */
    private static int dataOffset(byte[] bytes) {
        if (bytes.length < 10) {
            return bytes.length;
        }
        boolean wide = bytes[6] == 2 || bytes[6] == 3;
        if (wide && bytes.length < 12) {
            return bytes.length;
        }
        long length = wide ? ByteBuffer.wrap(bytes, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffff_ffffL
                : ByteBuffer.wrap(bytes, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort() & 0xffff;
        return (int) Math.min(bytes.length, (wide ? 12 : 10) + length);
    }

    /**
     * A .npy file with this header text (latin-1 up to version 2.0, UTF-8 in 3.0), optionally padded
     * with spaces and a newline to numpy's 64-byte alignment.
     */
    private static byte[] npyFile(int major, String header, byte[] data, boolean padded) {
        int lengthFieldSize = major == 1 ? 2 : 4;
        byte[] text = header.getBytes(major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        ByteArrayOutputStream headerBytes = new ByteArrayOutputStream();
        headerBytes.writeBytes(text);
        if (padded) {
            while ((8 + lengthFieldSize + headerBytes.size() + 1) % 64 != 0) {
                headerBytes.write(' ');
            }
            headerBytes.write('\n');
        }
        ByteBuffer prefix = ByteBuffer.allocate(8 + lengthFieldSize).order(ByteOrder.LITTLE_ENDIAN);
        prefix.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) major).put((byte) 0);
        if (lengthFieldSize == 2) {
            prefix.putShort((short) headerBytes.size());
        } else {
            prefix.putInt(headerBytes.size());
        }
        return concat(prefix.array(), headerBytes.toByteArray(), data);
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    private static String excerpt(String text) {
        return text.length() <= 60 ? text : text.substring(0, 60) + "... (" + text.length() + " characters)";
    }
}
