package dev.sdrt.graphs.passes;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import dev.sdrt.graphs.io.AtomicFiles;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Activation scales for the {@code qdq} pass: the file {@code sdrt calibrate} writes and {@code sdrt optimize
 * --passes qdq --scales FILE} reads.
 *
 * <pre>
 * {
 *   "format": "sdrt-scales-1",
 *   "header": { how it was made: tool, model, prompts, method, ... },
 *   "amax": { "activation tensor name": amax, ... },
 *   "smoothquant": {                                   (optional)
 *     "alpha": α,
 *     "factors": { "activation tensor name": [s_0, s_1, ...], ... },
 *     "amax": { "activation tensor name": amax of (tensor / s), ... }
 *   }
 * }
 * </pre>
 *
 * Tensor names are the names of the activation values entering each quantized op (the first input of
 * a Conv, MatMul or Gemm). Every amax and factor must be finite and positive; a file that breaks a
 * rule is rejected when read, naming the tensor. Writing is atomic (temp file beside the target, then
 * a move) and deterministic (keys in insertion order, floats in Java's round-trip form).
 */
public final class Scales {
    public static final String FORMAT = "sdrt-scales-1";

    /** How to make a scales file, for error messages. */
    static final String HOW_TO_MAKE = "make one with `sdrt calibrate --model PIPELINE_DIR --out FILE.json` and pass it as "
            + "`sdrt optimize --scales FILE.json` (or qdq:scales=FILE.json in a pass spec)";

    /**
     * SmoothQuant factors and the amax of each smoothed activation.
     *
     * @param alpha the migration strength the factors were made with (null when unknown)
     * @param factors per activation tensor: one factor per input channel; the pass divides the
     *     activation by s and multiplies the weights' input channels by s
     * @param amax per activation tensor: amax of tensor / s (may lack entries; the pass then bounds
     *     it by amax / min(s) and says so)
     */
    public record SmoothQuant(Double alpha, Map<String, float[]> factors, Map<String, Float> amax) {
        public SmoothQuant {
            factors = Collections.unmodifiableMap(new LinkedHashMap<>(factors));
            amax = Collections.unmodifiableMap(new LinkedHashMap<>(amax));
        }
    }

    private final Map<String, Object> header;
    private final Map<String, Float> amax;
    private final SmoothQuant smoothQuant;

    /**
     * @param header free-form description (String, Number, Boolean or null values)
     * @param amax activation tensor name → amax (finite, positive)
     * @param smoothQuant SmoothQuant factors, or null
     * @throws IllegalArgumentException when an amax or factor is not finite and positive
     */
    public Scales(Map<String, Object> header, Map<String, Float> amax, SmoothQuant smoothQuant) {
        this.header = Collections.unmodifiableMap(new LinkedHashMap<>(header));
        this.amax = Collections.unmodifiableMap(new LinkedHashMap<>(amax));
        this.smoothQuant = smoothQuant;
        this.amax.forEach((k, v) -> checkPositive("amax of " + k, v));
        if (smoothQuant != null) {
            smoothQuant.factors().forEach((k, s) -> {
                if (s.length == 0) {
                    throw new IllegalArgumentException("smoothquant factors of " + k + " are empty");
                }
                for (int i = 0; i < s.length; i++) {
                    checkPositive("smoothquant factor " + i + " of " + k, s[i]);
                }
            });
            smoothQuant.amax().forEach((k, v) -> checkPositive("smoothquant amax of " + k, v));
        }
    }

    /** Scales with an empty header and no SmoothQuant factors. */
    public static Scales of(Map<String, Float> amax) {
        return new Scales(Map.of(), amax, null);
    }

    private static void checkPositive(String what, Float v) {
        if (v == null || !Float.isFinite(v) || v <= 0) {
            throw new IllegalArgumentException(what + " must be finite and positive, got " + v);
        }
    }

    public Map<String, Object> header() {
        return header;
    }

    /** Activation tensor name → amax. */
    public Map<String, Float> amax() {
        return amax;
    }

    /** The amax of {@code tensor}, or null when the file has none. */
    public Float amax(String tensor) {
        return amax.get(tensor);
    }

    public Optional<SmoothQuant> smoothQuant() {
        return Optional.ofNullable(smoothQuant);
    }

    /** These scales with other SmoothQuant factors (null: none). */
    public Scales withSmoothQuant(SmoothQuant sq) {
        return new Scales(header, amax, sq);
    }

    // ---- reading ----

    /**
     * Reads and validates a scales file.
     *
     * @throws IllegalArgumentException when the file is missing (the message says how to make one),
     *     is not JSON, is not format {@value #FORMAT}, or holds a value that is not finite and positive
     * @throws UncheckedIOException when the file exists but cannot be read
     */
    public static Scales read(Path file) {
        return parse(readText(file, "scales file"), file.toString());
    }

    /** Parses the text of a scales file; {@code source} names it in error messages. */
    public static Scales parse(String json, String source) {
        Object root = parseJson(json, source);
        if (!(root instanceof Map<?, ?> map)) {
            throw new IllegalArgumentException(source + ": a scales file is a JSON object");
        }
        Object format = map.get("format");
        if (!FORMAT.equals(format)) {
            throw new IllegalArgumentException(source + ": not a scales file (\"format\" is " + (format == null ? "missing"
                    : "'" + format + "'") + ", expected '" + FORMAT + "'); " + HOW_TO_MAKE);
        }
        Map<String, Object> header = new LinkedHashMap<>();
        if (map.get("header") instanceof Map<?, ?> h) {
            h.forEach((k, v) -> header.put((String) k, v instanceof Map || v instanceof List ? String.valueOf(v) : v));
        }
        Object amaxNode = map.get("amax");
        if (!(amaxNode instanceof Map<?, ?>)) {
            throw new IllegalArgumentException(source + ": \"amax\" must be an object of tensor name → number");
        }
        try {
            Map<String, Float> amax = floats(amaxNode, source + " amax");
            SmoothQuant sq = null;
            if (map.get("smoothquant") instanceof Map<?, ?> s) {
                sq = smoothQuant(s, source);
            }
            return new Scales(header, amax, sq);
        } catch (IllegalArgumentException e) {
            throw e.getMessage().startsWith(source) ? e : new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads SmoothQuant factors from a file in any of three forms: a plain object of tensor name →
     * array of factors; an object with {@code "factors"} (and optionally {@code "amax"} and {@code
     * "alpha"}); or a whole scales file with a {@code "smoothquant"} section.
     */
    public static SmoothQuant readSmoothQuant(Path file) {
        String source = file.toString();
        Object root = parseJson(readText(file, "smoothquant file"), source);
        if (!(root instanceof Map<?, ?> map)) {
            throw new IllegalArgumentException(source + ": a smoothquant file is a JSON object");
        }
        try {
            SmoothQuant sq;
            if (map.get("smoothquant") instanceof Map<?, ?> s) {
                sq = smoothQuant(s, source);
            } else if (map.get("factors") instanceof Map<?, ?>) {
                sq = smoothQuant(map, source);
            } else {
                sq = new SmoothQuant(null, arrays(map, source), Map.of());
            }
            new Scales(Map.of(), Map.of(), sq); // validates
            return sq;
        } catch (IllegalArgumentException e) {
            throw e.getMessage().startsWith(source) ? e : new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private static SmoothQuant smoothQuant(Map<?, ?> s, String source) {
        Double alpha = s.get("alpha") instanceof Number n ? n.doubleValue() : null;
        Map<String, float[]> factors = s.get("factors") instanceof Map<?, ?> f ? arrays(f, source) : Map.of();
        Map<String, Float> smoothedAmax = s.get("amax") instanceof Map<?, ?> a ? floats(a, source + " smoothquant amax") : Map.of();
        return new SmoothQuant(alpha, factors, smoothedAmax);
    }

    private static Map<String, Float> floats(Object node, String where) {
        Map<String, Float> out = new LinkedHashMap<>();
        ((Map<?, ?>) node).forEach((k, v) -> {
            if (!(v instanceof Number n)) {
                throw new IllegalArgumentException(where + ": value of '" + k + "' is not a number");
            }
            out.put((String) k, n.floatValue());
        });
        return out;
    }

    private static Map<String, float[]> arrays(Map<?, ?> node, String source) {
        Map<String, float[]> out = new LinkedHashMap<>();
        node.forEach((k, v) -> {
            if (!(v instanceof List<?> list)) {
                throw new IllegalArgumentException(source + ": smoothquant factors of '" + k + "' are not an array of numbers");
            }
            float[] f = new float[list.size()];
            for (int i = 0; i < f.length; i++) {
                if (!(list.get(i) instanceof Number n)) {
                    throw new IllegalArgumentException(source + ": smoothquant factor " + i + " of '" + k + "' is not a number");
                }
                f[i] = n.floatValue();
            }
            out.put((String) k, f);
        });
        return out;
    }

    private static String readText(Path file, String what) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(what + " " + file + " does not exist; " + HOW_TO_MAKE, e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + what + " " + file + ": " + e.getMessage(), e);
        }
    }

    // ---- writing ----

    /**
     * The file's text: format, header, amax, then smoothquant when present; two-space indentation, keys
     * in insertion order, numbers as {@link Float#toString} and {@link Double#toString} write them (the
     * shortest text that reads back as the same value), each factor array on one line.
     */
    public String toJson() {
        StringWriter text = new StringWriter();
        try (JsonWriter w = new JsonWriter(text)) {
            w.setIndent("  ");
            w.setSerializeNulls(true);
            w.beginObject();
            w.name("format").value(FORMAT);
            w.name("header").beginObject();
            for (Map.Entry<String, Object> e : header.entrySet()) {
                scalar(w.name(e.getKey()), e.getValue());
            }
            w.endObject();
            floats(w.name("amax"), amax);
            if (smoothQuant != null) {
                w.name("smoothquant").beginObject();
                scalar(w.name("alpha"), smoothQuant.alpha());
                w.name("factors").beginObject();
                for (Map.Entry<String, float[]> e : smoothQuant.factors().entrySet()) {
                    // one line per tensor, not Gson's one line per factor (thousands of them)
                    StringBuilder array = new StringBuilder("[");
                    float[] f = e.getValue();
                    for (int i = 0; i < f.length; i++) {
                        array.append(i == 0 ? "" : ", ").append(Float.toString(f[i]));
                    }
                    w.name(e.getKey()).jsonValue(array.append(']').toString());
                }
                w.endObject();
                floats(w.name("amax"), smoothQuant.amax());
                w.endObject();
            }
            w.endObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a StringWriter does not throw
        }
        return text.append('\n').toString();
    }

    /** Writes {@link #toJson()} to {@code file} atomically: readers see the old file or the new one, never half of one. */
    public void write(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        String json = toJson();
        AtomicFiles.write(file, temp -> Files.writeString(temp, json, StandardCharsets.UTF_8));
    }

    private static void floats(JsonWriter w, Map<String, Float> values) throws IOException {
        w.beginObject();
        for (Map.Entry<String, Float> e : values.entrySet()) {
            w.name(e.getKey()).value(e.getValue().floatValue());
        }
        w.endObject();
    }

    /** A header value: numbers as they print (non-finite ones as strings), booleans, null, anything else as its string. */
    private static void scalar(JsonWriter w, Object v) throws IOException {
        if (v == null) {
            w.nullValue();
        } else if (v instanceof Boolean bool) {
            w.value(bool.booleanValue());
        } else if (v instanceof Number n && Double.isFinite(n.doubleValue())) {
            w.jsonValue(v instanceof Float f ? Float.toString(f) : v.toString());
        } else {
            w.value(v.toString());
        }
    }

    // ---- reading JSON (Gson's streaming reader, strict, into maps, lists, strings, doubles, booleans and nulls) ----

    private static final int MAX_DEPTH = 64;
    private static final Pattern GSON_LOCATION = Pattern.compile(" at line (\\d+) column (\\d+)( path \\S*)?");

    static Object parseJson(String text, String source) {
        JsonReader r = new JsonReader(new StringReader(text));
        r.setStrictness(Strictness.STRICT);
        try {
            Object value = value(r, 0, source);
            boolean more;
            try {
                more = r.peek() != JsonToken.END_DOCUMENT;
            } catch (IOException e) {
                more = true;
            }
            if (more) {
                throw error(r, source, "unexpected text after the JSON value");
            }
            return value;
        } catch (IOException e) {
            // Gson's message: "what at line L column C path P", perhaps followed by a line of advice
            String first = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            Matcher m = GSON_LOCATION.matcher(first);
            if (m.find()) {
                // minus Gson's advice to read leniently, which is not the reader's choice
                String what = first.substring(0, m.start()).replace("Use JsonReader.setStrictness(Strictness.LENIENT) to accept ", "");
                throw failure(source, m.group(1), m.group(2), what.strip());
            }
            throw new IllegalArgumentException(source + ": not valid JSON: " + first, e);
        }
    }

    private static Object value(JsonReader r, int depth, String source) throws IOException {
        if (depth > MAX_DEPTH) {
            throw error(r, source, "nested deeper than " + MAX_DEPTH);
        }
        switch (r.peek()) {
            case BEGIN_OBJECT -> {
                Map<String, Object> map = new LinkedHashMap<>();
                r.beginObject();
                while (r.hasNext()) {
                    String key = r.nextName();
                    if (map.containsKey(key)) {
                        throw error(r, source, "key '" + key + "' appears twice");
                    }
                    map.put(key, value(r, depth + 1, source));
                }
                r.endObject();
                return map;
            }
            case BEGIN_ARRAY -> {
                List<Object> list = new ArrayList<>();
                r.beginArray();
                while (r.hasNext()) {
                    list.add(value(r, depth + 1, source));
                }
                r.endArray();
                return list;
            }
            case STRING -> {
                return r.nextString();
            }
            case NUMBER -> {
                return r.nextDouble();
            }
            case BOOLEAN -> {
                return r.nextBoolean();
            }
            case NULL -> {
                r.nextNull();
                return null;
            }
            default -> throw error(r, source, "unexpected " + r.peek());
        }
    }

    /** An error at the reader's position (its {@code toString()} says "at line L column C path P"). */
    private static IllegalArgumentException error(JsonReader r, String source, String what) {
        Matcher m = GSON_LOCATION.matcher(r.toString());
        return m.find() ? failure(source, m.group(1), m.group(2), what)
                : new IllegalArgumentException(source + ": not valid JSON: " + what);
    }

    private static IllegalArgumentException failure(String source, String line, String column, String what) {
        return new IllegalArgumentException(source + ": not valid JSON at line " + line + ", column " + column + ": " + what);
    }
}
