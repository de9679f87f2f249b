package dev.sdrt.exporter.config;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.sdrt.exporter.json.JsonInput;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/**
 * A typed view of a component's config.json, as written by diffusers ({@code _class_name} plus the model's
 * constructor arguments) or transformers ({@code architectures}, {@code model_type}, ...).
 *
 * <p>A key whose value is JSON {@code null} counts as absent: diffusers writes Python's None for "use the
 * default". A key that is present with the wrong type is an error, never silently replaced by the default.
 *
 * <p>The range-checked getters ({@link #size}, {@link #layerCount}, {@link #intInRange}, {@link #intList},
 * {@link #perBlock}, {@link #positiveNumber}, {@link #numberInRange}) are for values that a graph is built
 * from: a count of -1 or an epsilon of 0 is then an error naming the key, its value and the range, instead
 * of a graph that exports and computes nonsense, or a division by zero deep inside the exporter.
 */
public final class DiffusersConfig {
    /**
     * The largest size {@link #size} accepts: channels, widths, vocabulary and position counts of real models
     * stay below 2^17. The bound keeps what the exporter allocates while building a graph (position ids,
     * group norm constants) to a few megabytes; a weight too large to hold is refused by the weights.
     */
    public static final int MAX_SIZE = 1 << 20;
    /** The most layers {@link #layerCount} accepts: real models have a few dozen; each costs graph nodes. */
    public static final int MAX_LAYERS = 1024;
    /** A config is a few kilobytes; anything past this is not one, and would be read into memory whole. */
    static final long MAX_FILE_BYTES = 10_000_000L;
    /** Configs nest a few levels (transformers' text_config, id2label); deeper is not a config. */
    static final int MAX_DEPTH = 32;
    /** More digits than any setting has; parsing a megabyte-long numeral exactly would take long. */
    private static final int MAX_NUMERAL_LENGTH = 100;

    private final Path file;
    private final JsonObject json;

    private DiffusersConfig(Path file, JsonObject json) {
        this.file = file;
        this.json = json;
    }

    /** Reads {@code folderOrFile}/config.json, or the given file. */
    public static DiffusersConfig load(Path folderOrFile) throws IOException {
        Path file = Files.isDirectory(folderOrFile) ? folderOrFile.resolve("config.json") : folderOrFile;
        long size = Files.size(file);
        if (size > MAX_FILE_BYTES) {
            throw new ConfigException(file + ": is " + size + " bytes, more than the " + MAX_FILE_BYTES
                    + " a model config can be (is it a config.json?)");
        }
        return parse(file, Files.readString(file));
    }

    /** Parses config text; {@code file} names its origin in error messages (a resource path for built-in configs). */
    public static DiffusersConfig parse(Path file, String text) {
        // Checked first: printing or copying a deeper tree (json(), error messages) would overflow the stack.
        JsonInput.pathDeeperThan(text, MAX_DEPTH).ifPresent(path -> {
            throw new ConfigException(file + ": nests more than " + MAX_DEPTH + " levels deep, at " + path);
        });
        JsonElement root;
        try {
            // Lenient, as Python's json.dumps may write NaN or Infinity: the file still loads, and only
            // reading such a value as a number fails.
            root = JsonParser.parseString(text);
        } catch (JsonParseException e) {
            throw new ConfigException(file + ": not valid JSON: " + JsonInput.describeError(e), e);
        }
        if (!root.isJsonObject()) {
            throw new ConfigException(file + ": not a JSON object");
        }
        return new DiffusersConfig(file, root.getAsJsonObject());
    }

    public Path file() {
        return file;
    }

    /** A copy of the whole document, for keys that the typed getters do not cover (nested lists, objects). */
    public JsonObject json() {
        return json.deepCopy();
    }

    /**
     * The model class: diffusers' {@code _class_name}, else transformers' {@code architectures[0]}, else its
     * {@code model_type}.
     */
    public String className() {
        if (has("_class_name")) {
            return requireString("_class_name");
        }
        if (has("architectures")) {
            List<String> architectures = requireStringList("architectures");
            if (!architectures.isEmpty()) {
                return architectures.get(0);
            }
        }
        if (has("model_type")) {
            return requireString("model_type");
        }
        throw new ConfigException(file + ": names no model class (no '_class_name', 'architectures' or 'model_type')");
    }

    /** Whether {@code key} is present with a non-null value. */
    public boolean has(String key) {
        JsonElement value = json.get(key);
        return value != null && !value.isJsonNull();
    }

    public int getInt(String key, int defaultValue) {
        return has(key) ? requireInt(key) : defaultValue;
    }

    /** An integer; 2.0 is accepted as 2, 2.5 is not. */
    public int requireInt(String key) {
        return toInt(key, require(key));
    }

    public double getDouble(String key, double defaultValue) {
        return has(key) ? requireDouble(key) : defaultValue;
    }

    public double requireDouble(String key) {
        JsonElement value = require(key);
        if (!isNumber(value)) {
            throw wrongType(key, value, "a number");
        }
        return value.getAsDouble();
    }

    /** An integer in [{@code min}, {@code max}], or {@code defaultValue} when absent. */
    public int intInRange(String key, int defaultValue, int min, int max) {
        return has(key) ? toIntInRange(key, json.get(key), min, max) : defaultValue;
    }

    /** A channel count, width, vocabulary or other size: an integer in [1, {@link #MAX_SIZE}]. */
    public int size(String key, int defaultValue) {
        return intInRange(key, defaultValue, 1, MAX_SIZE);
    }

    /** {@link #size}, for a key without a default. */
    public int requireSize(String key) {
        return toIntInRange(key, require(key), 1, MAX_SIZE);
    }

    /** A number of layers: an integer in [1, {@link #MAX_LAYERS}]. */
    public int layerCount(String key, int defaultValue) {
        return intInRange(key, defaultValue, 1, MAX_LAYERS);
    }

    /**
     * A list of 1 to {@code maxLength} integers, each in [{@code min}, {@code max}] ({@code
     * block_out_channels}); a single integer is read as a list of one.
     */
    public List<Integer> intList(String key, List<Integer> defaultValue, int maxLength, int min, int max) {
        if (!has(key)) {
            return defaultValue;
        }
        JsonElement value = json.get(key);
        if (!value.isJsonArray()) {
            return List.of(toIntInRange(key, value, min, max));
        }
        JsonArray array = value.getAsJsonArray();
        if (array.isEmpty() || array.size() > maxLength) {
            throw invalid(key, value, "a list of 1 to " + maxLength + " integers");
        }
        return entriesInRange(key, array, min, max);
    }

    /**
     * A per-block integer setting, as {@link #getIntList(String, int)} reads it (a single integer stands for
     * every block), with each entry in [{@code min}, {@code max}]; {@code defaultValue} for every block when
     * absent.
     */
    public List<Integer> perBlock(String key, int blocks, int defaultValue, int min, int max) {
        if (!has(key)) {
            return Collections.nCopies(blocks, defaultValue);
        }
        JsonElement value = json.get(key);
        if (!value.isJsonArray()) {
            return Collections.nCopies(blocks, toIntInRange(key, value, min, max));
        }
        JsonArray array = value.getAsJsonArray();
        if (array.size() != blocks) {
            throw new ConfigException(file + ": '" + key + "' has " + array.size() + " entries "
                    + abbreviate(array.toString()) + " where " + blocks + " are expected");
        }
        return entriesInRange(key, array, min, max);
    }

    /** An epsilon, scale or other finite number greater than 0, or {@code defaultValue} when absent. */
    public double positiveNumber(String key, double defaultValue) {
        double value = getDouble(key, defaultValue);
        if (!(value > 0) || Double.isInfinite(value)) {
            throw invalid(key, json.get(key), "a finite number greater than 0");
        }
        return value;
    }

    /** A number in [{@code min}, {@code max}] (so not NaN), or {@code defaultValue} when absent. */
    public double numberInRange(String key, double defaultValue, double min, double max) {
        double value = getDouble(key, defaultValue);
        if (!(value >= min && value <= max)) {
            throw invalid(key, json.get(key), "a number in [" + min + ", " + max + "]");
        }
        return value;
    }

    /**
     * The error for a value of {@code key} that breaks a rule the getters cannot know (a group count that
     * must divide every block's channels): "'norm_num_groups' is 0; it must be {@code requirement}".
     */
    public ConfigException invalid(String key, Object value, String requirement) {
        return new ConfigException(file + ": '" + key + "' is " + abbreviate(String.valueOf(value)) + "; it must be "
                + requirement);
    }

    public boolean getBoolean(String key, boolean defaultValue) {
        return has(key) ? requireBoolean(key) : defaultValue;
    }

    public boolean requireBoolean(String key) {
        JsonElement value = require(key);
        if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isBoolean()) {
            throw wrongType(key, value, "true or false");
        }
        return value.getAsBoolean();
    }

    /** A string, or {@code defaultValue} (which may be null) when absent. */
    public String getString(String key, String defaultValue) {
        return has(key) ? requireString(key) : defaultValue;
    }

    public String requireString(String key) {
        JsonElement value = require(key);
        if (!isString(value)) {
            throw wrongType(key, value, "a string");
        }
        return value.getAsString();
    }

    public Optional<List<String>> getStringList(String key) {
        return has(key) ? Optional.of(requireStringList(key)) : Optional.empty();
    }

    public List<String> requireStringList(String key) {
        return requireList(key, element -> {
            if (!isString(element)) {
                throw wrongType(key, element, "a string");
            }
            return element.getAsString();
        });
    }

    /**
     * An integer list; a single integer is read as a list of one. Diffusers accepts either form for many
     * per-block settings.
     */
    public Optional<List<Integer>> getIntList(String key) {
        return has(key) ? Optional.of(requireIntList(key)) : Optional.empty();
    }

    public List<Integer> requireIntList(String key) {
        JsonElement value = require(key);
        if (!value.isJsonArray()) {
            return List.of(toInt(key, value));
        }
        return requireList(key, element -> toInt(key, element));
    }

    /**
     * A per-block integer setting ({@code attention_head_dim}, {@code transformer_layers_per_block}, ...):
     * a single integer stands for every block and is repeated {@code expectedLength} times; a list must
     * have exactly {@code expectedLength} entries.
     */
    public Optional<List<Integer>> getIntList(String key, int expectedLength) {
        return has(key) ? Optional.of(requireIntList(key, expectedLength)) : Optional.empty();
    }

    public List<Integer> requireIntList(String key, int expectedLength) {
        JsonElement value = require(key);
        if (!value.isJsonArray()) {
            return Collections.nCopies(expectedLength, toInt(key, value));
        }
        List<Integer> list = requireIntList(key);
        if (list.size() != expectedLength) {
            throw new ConfigException(file + ": '" + key + "' has " + list.size() + " entries "
                    + abbreviate(list.toString()) + " where " + expectedLength + " are expected");
        }
        return list;
    }

    @Override
    public String toString() {
        return "DiffusersConfig[" + file + "]";
    }

    private JsonElement require(String key) {
        if (!has(key)) {
            throw new ConfigException(file + ": required key '" + key + "' is "
                    + (json.has(key) ? "null" : "missing"));
        }
        return json.get(key);
    }

    private <T> List<T> requireList(String key, Function<JsonElement, T> convert) {
        JsonElement value = require(key);
        if (!value.isJsonArray()) {
            throw wrongType(key, value, "a list");
        }
        JsonArray array = value.getAsJsonArray();
        List<T> list = new ArrayList<>(array.size());
        for (JsonElement element : array) {
            list.add(convert.apply(element));
        }
        return List.copyOf(list);
    }

    private int toInt(String key, JsonElement value) {
        BigDecimal number = decimal(value);
        if (number != null) {
            try {
                return number.intValueExact();
            } catch (ArithmeticException e) {
                // not integral or out of range: reported below
            }
        }
        throw wrongType(key, value, "an integer");
    }

    /** An integer in [min, max]: 2.0 is 2, 2.5 is the wrong type, 3000000000 and -1 are out of range. */
    private int toIntInRange(String key, JsonElement value, int min, int max) {
        String range = "an integer in [" + min + ", " + max + "]";
        BigDecimal number = decimal(value);
        if (number == null || number.stripTrailingZeros().scale() > 0) {
            throw wrongType(key, value, range);
        }
        if (number.compareTo(BigDecimal.valueOf(min)) < 0 || number.compareTo(BigDecimal.valueOf(max)) > 0) {
            throw invalid(key, value, range);
        }
        return number.intValueExact();
    }

    /** Entry i is reported as "key[i]". */
    private List<Integer> entriesInRange(String key, JsonArray array, int min, int max) {
        List<Integer> list = new ArrayList<>(array.size());
        for (int i = 0; i < array.size(); i++) {
            list.add(toIntInRange(key + "[" + i + "]", array.get(i), min, max));
        }
        return List.copyOf(list);
    }

    /** The number exactly, or null if it is none (or a numeral too long for any setting). */
    private static BigDecimal decimal(JsonElement value) {
        if (!isNumber(value) || value.getAsString().length() > MAX_NUMERAL_LENGTH) {
            return null;
        }
        try {
            return new BigDecimal(value.getAsString());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static boolean isNumber(JsonElement value) {
        return value.isJsonPrimitive() && value.getAsJsonPrimitive().isNumber();
    }

    private static boolean isString(JsonElement value) {
        return value.isJsonPrimitive() && value.getAsJsonPrimitive().isString();
    }

    private ConfigException wrongType(String key, JsonElement value, String expected) {
        return new ConfigException(file + ": '" + key + "' should be " + expected + " but is "
                + abbreviate(value.toString()));
    }
}
