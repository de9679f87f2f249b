package dev.sdrt.exporter.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.sdrt.exporter.LoaderMessages;
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
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of valid files, the fixtures' checkpoints and small hand-made ones: flipped, inserted and
 * deleted bytes, cuts, a changed header length, and header values rewritten (dtypes, shapes, offsets, deep
 * nesting, huge numbers, duplicate keys, values that are not objects). Each mutant either opens, and then
 * every tensor reads and the tensors cover the data section exactly, or fails with a SafetensorsException
 * whose message is short. Nothing else may escape: no Error, no RuntimeException of any type.
 */
class SafetensorsFuzzTest {
    private static final long SEED = 0x5afe7e45L;
    private static final int MUTANTS = 3_000;
    private static final String DEEP = "[".repeat(10_000) + "]".repeat(10_000);
    /** JSON values put in place of header values, raw text so that huge numbers stay exact. */
    private static final List<String> VALUES = List.of("0", "1", "-1", "4", "1.5", "4.0", "4e0", "-0",
            "2147483648", "1099511627776", "9223372036854775807", "9223372036854775808", "1e400",
            "99999999999999999999999999999999", "\"F32\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"U8\"", "\"BOOL\"",
            "\"F4\"", "\"f32\"", "\"\"", "null", "true", "{}", "[]", "[0]", "[-1]", "[1,2]", "[0,4]", "[4,0]",
            "[1099511627776,1099511627776]", "[[1]]", "[\"1\"]", "{\"a\":[1]}", DEEP,
            "\"" + "x".repeat(100_000) + "\"");
    /** Bytes that move JSON structure around when flipped in or inserted. */
    private static final byte[] SYNTAX = "{}[]\",: \n0123456789-.e\\".getBytes(StandardCharsets.UTF_8);

    @TempDir
    static Path dir;
    private static final List<Seed> seeds = new ArrayList<>();

    /** A valid file to mutate, and how often to pick it: big fixtures less often, as each mutant is written out. */
    private record Seed(String name, byte[] bytes, int weight) {
    }

    /**
     * Where the mutants of one seed are written, in place through one open channel, so that the size changes
     * little from one to the next: rewriting a file by reopening it truncated makes ext4 flush it on close,
     * milliseconds per mutant instead of microseconds.
     */
    private record MutantFile(Path path, FileChannel channel) {
        MutantFile(Path path) throws IOException {
            this(path, FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE));
        }

        Path write(Mutant mutant) throws IOException {
            ByteBuffer head = ByteBuffer.wrap(mutant.head());
            while (head.hasRemaining()) {
                channel.write(head, head.position());
            }
            ByteBuffer tail = ByteBuffer.wrap(mutant.seed(), mutant.tailFrom(), mutant.tailTo() - mutant.tailFrom());
            while (tail.hasRemaining()) {
                channel.write(tail, mutant.head().length + tail.position() - mutant.tailFrom());
            }
            channel.truncate(mutant.length());
            return path;
        }
    }

    /**
     * A mutant: {@code head}, then bytes [tailFrom, tailTo) of the seed, which are not copied (a fixture is
     * megabytes, and the mutations change its first bytes only), and what was done, for the failure report.
     */
    private record Mutant(String description, byte[] head, byte[] seed, int tailFrom, int tailTo) {
        /** A mutated head followed by the rest of the seed. */
        Mutant(String description, byte[] head, byte[] seed, int tailFrom) {
            this(description, head, seed, tailFrom, seed.length);
        }

        long length() {
            return head.length + (long) (tailTo - tailFrom);
        }

        /** The header length the mutant declares (it opened, so it has one). */
        long declaredHeaderLength() {
            return ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        }
    }

    @BeforeAll
    static void collectSeeds() throws IOException {
        ByteBuffer mixed = ByteBuffer.allocate(8 + 2 + 2 + 1 + 1).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(-3).putShort((short) 0x3c00).putShort((short) 0x3f80).put((byte) 7).put((byte) 1).flip();
        Path handMade = dir.resolve("seed_mixed.safetensors");
        new SafetensorsWriter()
                .putMetadata("format", "pt")
                .add("ids", SafeDType.I64, new long[] {1}, mixed.slice(0, 8))
                .add("half", SafeDType.F16, new long[] {1, 1}, mixed.slice(8, 2))
                .add("bfloat", SafeDType.BF16, new long[] {1}, mixed.slice(10, 2))
                .add("byte", SafeDType.U8, new long[] {}, mixed.slice(12, 1))
                .add("flag", SafeDType.BOOL, new long[] {1}, mixed.slice(13, 1))
                .add("empty", SafeDType.F32, new long[] {0, 3}, ByteBuffer.allocate(0))
                .addFloats("weight", new long[] {2, 2}, new float[] {1, 2, 3, 4})
                .write(handMade);
        Path single = dir.resolve("seed_single.safetensors");
        new SafetensorsWriter().addFloats("w", new long[] {3}, new float[] {1, 2, 3}).write(single);
        Path none = dir.resolve("seed_none.safetensors");
        new SafetensorsWriter().write(none);
        seeds.add(new Seed("hand-made, mixed dtypes", Files.readAllBytes(handMade), 40));
        seeds.add(new Seed("hand-made, one tensor", Files.readAllBytes(single), 20));
        seeds.add(new Seed("hand-made, no tensors", Files.readAllBytes(none), 5));
        // a list, not a Map.of: its order would change from run to run, and with it the mutants of a seed
        for (Map.Entry<String, Integer> fixture : List.of(Map.entry("tiny_clip_text/model.safetensors", 6),
                Map.entry("tiny_sd3_transformer/diffusion_pytorch_model.safetensors", 3),
                Map.entry("tiny_vae_decoder/diffusion_pytorch_model.safetensors", 2),
                Map.entry("tiny_sd_unet/diffusion_pytorch_model.safetensors", 2),
                Map.entry("tiny_sdxl_unet/diffusion_pytorch_model.safetensors", 2))) {
            seeds.add(new Seed(fixture.getKey(), Files.readAllBytes(TestFixtures.root().resolve(fixture.getKey())),
                    fixture.getValue()));
        }
    }

    @Test
    void mutantsOpenCleanlyOrFailWithASafetensorsException() throws Exception {
        Random random = new Random(SEED);
        int totalWeight = seeds.stream().mapToInt(Seed::weight).sum();
        List<String> failures = new ArrayList<>();
        int opened = 0;
        List<MutantFile> files = new ArrayList<>();
        for (int k = 0; k < seeds.size(); k++) {
            files.add(new MutantFile(dir.resolve("mutant" + k + ".safetensors")));
        }
        try {
            for (int i = 0; i < MUTANTS; i++) {
                int seedIndex = pick(random, totalWeight);
                Seed seed = seeds.get(seedIndex);
                Mutant mutant = mutate(random, seed.bytes());
                Path path = files.get(seedIndex).write(mutant);
                String problem;
                try {
                    problem = openAndReadEverything(path, mutant);
                    opened += problem == null ? 1 : 0;
                } catch (SafetensorsException e) {
                    problem = LoaderMessages.problem(e.getMessage());
                } catch (Throwable e) { // the point of the test: Errors too
                    problem = e + " at " + Arrays.stream(e.getStackTrace()).limit(4).toList();
                }
                if (problem != null) {
                    failures.add("mutant " + i + " of " + seed.name() + " (" + mutant.description() + "): " + problem);
                }
            }
        } finally {
            for (MutantFile file : files) {
                file.channel().close();
            }
        }
        System.out.printf("safetensors fuzz: %d mutants, %d opened%n", MUTANTS, opened);
        assertThat(failures).as("mutants that broke the rules (seed " + SEED + ")").isEmpty();
        // the mutations are not so wild that everything fails: some opened, and were read through
        assertThat(opened).isGreaterThan(MUTANTS / 20);
    }

    /** Null if the file opens and holds together; what is wrong with it otherwise. */
    private static String openAndReadEverything(Path path, Mutant mutant) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            long covered = 0;
            for (String name : file.names()) {
                SafeTensor tensor = file.tensor(name);
                if (tensor.byteSize() != tensor.elementCount() * tensor.dtype().byteSize()) {
                    return "opened, but tensor '" + name + "' has " + tensor.byteSize() + " bytes for " + tensor;
                }
                if (tensor.dtype() == SafeDType.F32 || tensor.dtype() == SafeDType.F16
                        || tensor.dtype() == SafeDType.BF16) {
                    tensor.toFloatArray();
                }
                covered += tensor.byteSize();
            }
            long dataSize = mutant.length() - 8 - mutant.declaredHeaderLength();
            return covered == dataSize ? null
                    : "opened, but its tensors hold " + covered + " bytes of a " + dataSize + "-byte data section";
        }
    }

    /** The index of a seed, drawn by weight. */
    private static int pick(Random random, int totalWeight) {
        int ticket = random.nextInt(totalWeight);
        for (int k = 0; k < seeds.size(); k++) {
            ticket -= seeds.get(k).weight();
            if (ticket < 0) {
                return k;
            }
        }
        throw new AssertionError("weights add up to " + totalWeight);
    }

    /**
     * One mutation of the header, or of the first bytes after it: where it matters. Bytes further into the data
     * section only change tensor values, and inserting or deleting some at its start shifts all the rest.
     */
    private static Mutant mutate(Random random, byte[] seed) {
        int headerLength = (int) ByteBuffer.wrap(seed).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        int headerEnd = 8 + headerLength;
        int headLength = Math.min(seed.length, headerEnd + 64);
        byte[] head = Arrays.copyOf(seed, headLength);
        return switch (random.nextInt(9)) {
            case 0 -> {
                int flips = 1 + random.nextInt(4);
                for (int k = 0; k < flips; k++) {
                    head[random.nextInt(headLength)] ^= (byte) (1 << random.nextInt(8));
                }
                yield new Mutant(flips + " bits flipped", head, seed, headLength);
            }
            case 1 -> {
                int at = random.nextInt(headLength);
                head[at] = SYNTAX[random.nextInt(SYNTAX.length)];
                yield new Mutant("byte " + at + " set to '" + (char) head[at] + "'", head, seed, headLength);
            }
            case 2 -> {
                int at = random.nextInt(headLength + 1);
                byte[] inserted = new byte[1 + random.nextInt(8)];
                for (int k = 0; k < inserted.length; k++) {
                    inserted[k] = random.nextBoolean() ? SYNTAX[random.nextInt(SYNTAX.length)] : (byte) random.nextInt();
                }
                yield new Mutant(inserted.length + " bytes inserted at " + at, splice(head, at, 0, inserted), seed,
                        headLength);
            }
            case 3 -> {
                int at = random.nextInt(headLength);
                int count = Math.min(1 + random.nextInt(8), headLength - at);
                yield new Mutant(count + " bytes deleted at " + at, splice(head, at, count, new byte[0]), seed,
                        headLength);
            }
            case 4 -> {
                // mostly within the head, where a cut breaks the header
                int length = random.nextBoolean() ? random.nextInt(headLength) : random.nextInt(seed.length);
                yield length <= headLength
                        ? new Mutant("cut to " + length + " bytes", Arrays.copyOf(head, length), seed, 0, 0)
                        : new Mutant("cut to " + length + " bytes", head, seed, headLength, length);
            }
            case 5 -> {
                long[] lengths = {headerLength - 1L, headerLength + 1L, headerLength - 8L, headerLength + 8L, 0, 2,
                    random.nextInt(seed.length), seed.length, Long.MAX_VALUE, -1, 100_000_001, random.nextLong()};
                long length = lengths[random.nextInt(lengths.length)];
                ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).putLong(0, length);
                yield new Mutant("header length set to " + length, head, seed, headLength);
            }
            default -> rewriteHeader(random, seed, headerEnd);
        };
    }

    private static byte[] splice(byte[] bytes, int at, int removed, byte[] inserted) {
        byte[] out = new byte[bytes.length - removed + inserted.length];
        System.arraycopy(bytes, 0, out, 0, at);
        System.arraycopy(inserted, 0, out, at, inserted.length);
        System.arraycopy(bytes, at + removed, out, at + inserted.length, bytes.length - at - removed);
        return out;
    }

    /**
     * The header parsed, one value rewritten, written back with a correct length prefix (and sometimes
     * padding), followed by the seed's data section.
     */
    private static Mutant rewriteHeader(Random random, byte[] seed, int headerEnd) {
        String headerText = new String(seed, 8, headerEnd - 8, StandardCharsets.UTF_8);
        JsonObject header = JsonParser.parseString(headerText).getAsJsonObject();
        List<String> tensors = header.keySet().stream().filter(name -> !name.equals("__metadata__")).toList();
        String tensor = tensors.isEmpty() ? "w" : tensors.get(random.nextInt(tensors.size()));
        if (!header.has(tensor)) {
            header.add(tensor, new JsonObject());
        }
        JsonObject entry = header.getAsJsonObject(tensor);
        String raw = VALUES.get(random.nextInt(VALUES.size()));
        // Gson cannot hold raw text (and would recurse printing DEEP): a placeholder string stands in for it
        JsonPrimitive placeholder = new JsonPrimitive("@@raw@@");
        String description;
        Function<String, String> finish = text -> text;
        switch (random.nextInt(10)) {
            case 0, 1 -> {
                String field = List.of("dtype", "shape", "data_offsets", "extra").get(random.nextInt(4));
                entry.add(field, placeholder);
                description = tensor + "." + field + " = " + abbreviated(raw);
            }
            case 2 -> {
                JsonArray array = entry.getAsJsonArray(random.nextBoolean() ? "shape" : "data_offsets");
                if (array == null || array.isEmpty()) {
                    entry.add("shape", placeholder);
                    description = tensor + ".shape = " + abbreviated(raw);
                } else {
                    int index = random.nextInt(array.size());
                    long value = array.get(index).getAsLong();
                    long[] choices = {value + 1, value - 1, value * 2, 0, -value, Long.MAX_VALUE, 1L << 40};
                    long replaced = choices[random.nextInt(choices.length)];
                    array.set(index, new JsonPrimitive(replaced));
                    description = tensor + " array entry " + index + " = " + replaced;
                }
            }
            case 3 -> {
                String field = List.of("dtype", "shape", "data_offsets").get(random.nextInt(3));
                entry.remove(field);
                description = tensor + "." + field + " removed";
            }
            case 4 -> {
                header.add(tensor, placeholder);
                description = tensor + " = " + abbreviated(raw);
            }
            case 5 -> {
                JsonObject metadata = new JsonObject();
                metadata.add("format", placeholder);
                header.add("__metadata__", random.nextBoolean() ? metadata : placeholder);
                description = "__metadata__ holds " + abbreviated(raw);
            }
            case 6 -> {
                // Gson keeps one entry per name: a duplicate is spliced into the text
                String copy = "\"" + tensor + "\":" + entry + ",";
                finish = text -> "{" + copy + text.substring(1);
                description = "tensor " + tensor + " given twice";
            }
            case 7 -> {
                header.remove(tensor);
                description = "tensor " + tensor + " removed";
            }
            case 8 -> {
                String padding = List.of(" ", "   ", "\n", "\t ", "\u0000").get(random.nextInt(5));
                boolean leading = random.nextInt(4) == 0;
                finish = text -> leading ? padding + text : text + padding;
                description = (leading ? "leading" : "trailing") + " padding " + padding.codePoints().boxed().toList();
            }
            default -> {
                description = "whole header = " + abbreviated(raw);
                finish = text -> raw;
            }
        }
        String text = finish.apply(header.toString()).replace("\"@@raw@@\"", raw);
        byte[] json = text.getBytes(StandardCharsets.UTF_8);
        ByteBuffer head = ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(json.length).put(json);
        return new Mutant("header rewritten: " + description, head.array(), seed, headerEnd);
    }

    private static String abbreviated(String raw) {
        return raw.length() <= 40 ? raw : raw.substring(0, 40) + "... (" + raw.length() + " characters)";
    }
}
