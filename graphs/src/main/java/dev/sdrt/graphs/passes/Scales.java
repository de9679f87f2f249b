package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.io.AtomicFiles;
import java.io.IOException;
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

    /** The file's text: format, header, amax, then smoothquant when present. */
    public String toJson() {
        StringBuilder sb = new StringBuilder();
        sb.append("{\n  \"format\": ").append(quote(FORMAT)).append(",\n  \"header\": {");
        String sep = "\n";
        for (Map.Entry<String, Object> e : header.entrySet()) {
            sb.append(sep).append("    ").append(quote(e.getKey())).append(": ").append(scalar(e.getValue()));
            sep = ",\n";
        }
        sb.append(header.isEmpty() ? "}" : "\n  }").append(",\n  \"amax\": ");
        appendFloats(sb, amax, "  ");
        if (smoothQuant != null) {
            sb.append(",\n  \"smoothquant\": {\n    \"alpha\": ").append(scalar(smoothQuant.alpha())).append(",\n    \"factors\": {");
            sep = "\n";
            for (Map.Entry<String, float[]> e : smoothQuant.factors().entrySet()) {
                sb.append(sep).append("      ").append(quote(e.getKey())).append(": [");
                float[] f = e.getValue();
                for (int i = 0; i < f.length; i++) {
                    sb.append(i == 0 ? "" : ", ").append(Float.toString(f[i]));
                }
                sb.append(']');
                sep = ",\n";
            }
            sb.append(smoothQuant.factors().isEmpty() ? "}" : "\n    }").append(",\n    \"amax\": ");
            appendFloats(sb, smoothQuant.amax(), "    ");
            sb.append("\n  }");
        }
        return sb.append("\n}\n").toString();
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

    private static void appendFloats(StringBuilder sb, Map<String, Float> values, String indent) {
        if (values.isEmpty()) {
            sb.append("{}");
            return;
        }
        sb.append('{');
        String sep = "\n";
        for (Map.Entry<String, Float> e : values.entrySet()) {
            sb.append(sep).append(indent).append("  ").append(quote(e.getKey())).append(": ").append(Float.toString(e.getValue()));
            sep = ",\n";
        }
        sb.append('\n').append(indent).append('}');
    }

    private static String scalar(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Boolean) {
            return v.toString();
        }
        if (v instanceof Number n) {
            double d = n.doubleValue();
            if (!Double.isFinite(d)) {
                return quote(v.toString());
            }
            return v instanceof Float f ? Float.toString(f) : v.toString();
        }
        return quote(v.toString());
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"').toString();
    }

    // ---- a small JSON reader (graphs has no JSON library): objects, arrays, strings, numbers, literals ----

    static Object parseJson(String text, String source) {
        JsonReader r = new JsonReader(text, source);
        r.skipSpace();
        Object value = r.value(0);
        r.skipSpace();
        if (r.pos != text.length()) {
            throw r.error("unexpected text after the JSON value");
        }
        return value;
    }

    private static final class JsonReader {
        private static final int MAX_DEPTH = 64;
        private final String text;
        private final String source;
        private int pos;

        JsonReader(String text, String source) {
            this.text = text;
            this.source = source;
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) {
                throw error("nested deeper than " + MAX_DEPTH);
            }
            if (pos >= text.length()) {
                throw error("unexpected end of text");
            }
            char c = text.charAt(pos);
            return switch (c) {
                case '{' -> object(depth);
                case '[' -> array(depth);
                case '"' -> string();
                case 't' -> literal("true", Boolean.TRUE);
                case 'f' -> literal("false", Boolean.FALSE);
                case 'n' -> literal("null", null);
                default -> {
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        yield number();
                    }
                    throw error("unexpected character '" + c + "'");
                }
            };
        }

        private Map<String, Object> object(int depth) {
            Map<String, Object> map = new LinkedHashMap<>();
            pos++;
            skipSpace();
            if (peek() == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipSpace();
                if (peek() != '"') {
                    throw error("expected a quoted key");
                }
                String key = string();
                skipSpace();
                expect(':');
                skipSpace();
                if (map.containsKey(key)) {
                    throw error("key '" + key + "' appears twice");
                }
                map.put(key, value(depth + 1));
                skipSpace();
                char c = next();
                if (c == '}') {
                    return map;
                }
                if (c != ',') {
                    throw error("expected ',' or '}'");
                }
            }
        }

        private List<Object> array(int depth) {
            List<Object> list = new ArrayList<>();
            pos++;
            skipSpace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipSpace();
                list.add(value(depth + 1));
                skipSpace();
                char c = next();
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    throw error("expected ',' or ']'");
                }
            }
        }

        private String string() {
            pos++;
            StringBuilder sb = new StringBuilder();
            while (true) {
                char c = next();
                if (c == '"') {
                    return sb.toString();
                }
                if (c == '\\') {
                    char e = next();
                    switch (e) {
                        case '"', '\\', '/' -> sb.append(e);
                        case 'b' -> sb.append('\b');
                        case 'f' -> sb.append('\f');
                        case 'n' -> sb.append('\n');
                        case 'r' -> sb.append('\r');
                        case 't' -> sb.append('\t');
                        case 'u' -> {
                            if (pos + 4 > text.length()) {
                                throw error("truncated \\u escape");
                            }
                            try {
                                sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
                            } catch (NumberFormatException ex) {
                                throw error("bad \\u escape");
                            }
                            pos += 4;
                        }
                        default -> throw error("bad escape '\\" + e + "'");
                    }
                } else if (c < 0x20) {
                    throw error("control character in a string");
                } else {
                    sb.append(c);
                }
            }
        }

        private Number number() {
            int start = pos;
            while (pos < text.length() && "+-0123456789.eE".indexOf(text.charAt(pos)) >= 0) {
                pos++;
            }
            String s = text.substring(start, pos);
            try {
                return Double.parseDouble(s);
            } catch (NumberFormatException e) {
                pos = start;
                throw error("bad number '" + s + "'");
            }
        }

        private Object literal(String word, Object value) {
            if (!text.startsWith(word, pos)) {
                throw error("unexpected text");
            }
            pos += word.length();
            return value;
        }

        void skipSpace() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                pos++;
            }
        }

        private char peek() {
            if (pos >= text.length()) {
                throw error("unexpected end of text");
            }
            return text.charAt(pos);
        }

        private char next() {
            char c = peek();
            pos++;
            return c;
        }

        private void expect(char c) {
            if (next() != c) {
                pos--;
                throw error("expected '" + c + "'");
            }
        }

        IllegalArgumentException error(String what) {
            int line = 1;
            int col = 1;
            for (int i = 0; i < Math.min(pos, text.length()); i++) {
                if (text.charAt(i) == '\n') {
                    line++;
                    col = 1;
                } else {
                    col++;
                }
            }
            return new IllegalArgumentException(source + ": not valid JSON at line " + line + ", column " + col + ": " + what);
        }
    }
}
