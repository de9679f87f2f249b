package dev.sdrt.exporter.config;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
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
 */
public final class DiffusersConfig {
    private final Path file;
    private final JsonObject json;

    private DiffusersConfig(Path file, JsonObject json) {
        this.file = file;
        this.json = json;
    }

    /** Reads {@code folderOrFile}/config.json, or the given file. */
    public static DiffusersConfig load(Path folderOrFile) throws IOException {
        Path file = Files.isDirectory(folderOrFile) ? folderOrFile.resolve("config.json") : folderOrFile;
        return parse(file, Files.readString(file));
    }

    /** Parses config text; {@code file} names its origin in error messages (a resource path for built-in configs). */
    public static DiffusersConfig parse(Path file, String text) {
        JsonElement root;
        try {
            // Lenient, as Python's json.dumps may write NaN or Infinity: the file still loads, and only
            // reading such a value as a number fails.
            root = JsonParser.parseString(text);
        } catch (JsonParseException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getMessage(), e);
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
            throw new ConfigException(file + ": '" + key + "' has " + list.size() + " entries " + list
                    + " where " + expectedLength + " are expected");
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
        if (isNumber(value)) {
            try {
                return new BigDecimal(value.getAsString()).intValueExact();
            } catch (ArithmeticException | NumberFormatException e) {
                // not integral or out of range: reported below
            }
        }
        throw wrongType(key, value, "an integer");
    }

    private static boolean isNumber(JsonElement value) {
        return value.isJsonPrimitive() && value.getAsJsonPrimitive().isNumber();
    }

    private static boolean isString(JsonElement value) {
        return value.isJsonPrimitive() && value.getAsJsonPrimitive().isString();
    }

    private ConfigException wrongType(String key, JsonElement value, String expected) {
        return new ConfigException(file + ": '" + key + "' should be " + expected + " but is " + value);
    }
}
