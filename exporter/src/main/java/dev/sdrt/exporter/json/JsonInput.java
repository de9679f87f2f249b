package dev.sdrt.exporter.json;

import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import java.io.IOException;
import java.io.StringReader;
import java.util.Optional;

/**
 * Guards for JSON that comes from files (safetensors headers, shard indexes, config.json): nesting is
 * checked without recursion, and pieces of the input quoted in error messages are cut short. Gson reads a
 * document iteratively, but printing or copying a tree of it recurses once per level, so a value nested
 * 10,000 levels deep would overflow the stack; and a message must not echo megabytes of a bad file.
 */
public final class JsonInput {
    /** The most characters of the input that one error message quotes in one place. */
    public static final int QUOTE_LIMIT = 100;

    private JsonInput() {
    }

    /**
     * Where {@code text} first nests more than {@code maxDepth} arrays or objects deep, as a JSON path
     * ("$.a[0][0]", cut short), if it does before it ends or stops being well-formed. The text is read
     * leniently, as {@link JsonParser#parseString} reads it: check a text with this before parsing it into
     * a tree, and a syntax error is left for the parser to report.
     */
    public static Optional<String> pathDeeperThan(String text, int maxDepth) {
        JsonReader reader = new JsonReader(new StringReader(text));
        reader.setStrictness(Strictness.LENIENT);
        try {
            return skipValue(reader, maxDepth) ? Optional.empty() : Optional.of(abbreviate(reader.getPath()));
        } catch (IOException malformed) {
            return Optional.empty();
        }
    }

    /**
     * Skips the next value, as {@link JsonReader#skipValue()} does, unless it nests more than {@code
     * maxDepth} arrays or objects deep (a primitive is depth 0, {@code []} depth 1).
     *
     * @return whether the value was skipped; false leaves the reader inside the value, where it stopped
     */
    public static boolean skipValue(JsonReader reader, int maxDepth) throws IOException {
        int depth = 0;
        do {
            switch (reader.peek()) {
                case BEGIN_ARRAY -> {
                    if (++depth > maxDepth) {
                        return false;
                    }
                    reader.beginArray();
                }
                case BEGIN_OBJECT -> {
                    if (++depth > maxDepth) {
                        return false;
                    }
                    reader.beginObject();
                }
                case END_ARRAY -> {
                    depth--;
                    reader.endArray();
                }
                case END_OBJECT -> {
                    depth--;
                    reader.endObject();
                }
                case NAME -> reader.nextName();
                default -> reader.skipValue(); // a primitive; END_DOCUMENT cannot come before depth is 0 again
            }
        } while (depth > 0);
        return true;
    }

    /** {@code text} itself if it is short, else its start and how long it is: "abc... (123456 characters)". */
    public static String abbreviate(String text) {
        return abbreviate(text, QUOTE_LIMIT);
    }

    /**
     * Gson's message about malformed JSON, for a message of our own: the first line of the innermost cause
     * ("Unterminated object at line 1 column 19 path $.in_channels"), minus Gson's advice to parse leniently,
     * which is not a choice the user of a model file can make. The path names the keys on the way, which a
     * bad file may make long, so it is cut short too.
     */
    public static String describeError(Throwable error) {
        Throwable cause = error;
        while (cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
        }
        String firstLine = String.valueOf(cause.getMessage()).lines().findFirst().orElse("");
        return abbreviate(firstLine.replace("Use JsonReader.setStrictness(Strictness.LENIENT) to accept malformed JSON ", ""),
                3 * QUOTE_LIMIT);
    }

    private static String abbreviate(String text, int limit) {
        if (text.length() <= limit) {
            return text;
        }
        return text.substring(0, limit) + "... (" + text.length() + " characters)";
    }
}
