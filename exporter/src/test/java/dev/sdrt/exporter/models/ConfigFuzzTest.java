package dev.sdrt.exporter.models;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.LoaderMessages;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.safetensors.TestFixtures;
import dev.sdrt.exporter.weights.RandomWeights;
import dev.sdrt.exporter.weights.WeightsException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

/**
 * Seeded mutations of the fixtures' config.json files, each exported in memory with random weights, so that
 * every range check is reached: values made negative, zero, huge, of the wrong type, NaN, nested 10,000 deep,
 * removed, or nudged (doubled, plus or minus one, which often stays valid). Each export either succeeds or
 * fails with a ConfigException (or a WeightsException, for a layer too large to hold) whose message is short.
 * Nothing else may escape: no Error, no RuntimeException of another type, no bare JDK message.
 */
class ConfigFuzzTest {
    private static final long SEED = 0xc0f16L;
    /** Per component; the tiny models export in a few milliseconds each. */
    private static final int MUTANTS_PER_COMPONENT = 250;
    /** JSON values put in place of config values, raw text so that NaN and huge numbers go in as written. */
    private static final List<String> VALUES = List.of("-1", "0", "1", "2", "3", "7", "64", "2147483647",
            "2147483648", "-2147483648", "1099511627776", "1e300", "1e400", "-1e400", "1.5", "1e-30", "-0.0", "NaN",
            "Infinity", "-Infinity", "123456789012345678901234567890", "\"text\"", "\"silu\"", "\"\"", "true",
            "false", "null", "[]", "[0]", "[-1, 2]", "[32, 64]", "[[1]]", "{}", "{\"a\": 1}",
            "[".repeat(10_000) + "]".repeat(10_000), "\"" + "x".repeat(100_000) + "\"",
            "[" + "1, ".repeat(10_000) + "1]");

    /** An exporter, and the fixture whose config it starts from. */
    private record Component(String name, String fixture, BiConsumer<DiffusersConfig, RandomWeights> export) {
    }

    private static final List<Component> COMPONENTS = List.of(
            new Component("SD UNet", "tiny_sd_unet",
                    (c, w) -> UNet2DConditionExporter.export(c, w, ExportOptions.defaults())),
            new Component("SDXL UNet", "tiny_sdxl_unet",
                    (c, w) -> UNet2DConditionExporter.export(c, w, ExportOptions.defaults())),
            new Component("VAE decoder", "tiny_vae_decoder",
                    (c, w) -> AutoencoderKLExporter.exportDecoder(c, w, ExportOptions.defaults())),
            new Component("VAE encoder", "tiny_vae_decoder",
                    (c, w) -> AutoencoderKLExporter.exportEncoder(c, w, ExportOptions.defaults())),
            new Component("CLIP text encoder", "tiny_clip_text",
                    (c, w) -> ClipTextExporter.export(c, w, ExportOptions.defaults())),
            new Component("SD3 transformer", "tiny_sd3_transformer",
                    (c, w) -> Sd3TransformerExporter.export(c, w, ExportOptions.defaults())));

    @Test
    void mutatedConfigsExportOrFailWithAConfigException() throws Exception {
        Random random = new Random(SEED);
        List<String> failures = new ArrayList<>();
        int exported = 0;
        for (Component component : COMPONENTS) {
            JsonObject original = DiffusersConfig.load(TestFixtures.folder(component.fixture())).json();
            for (int i = 0; i < MUTANTS_PER_COMPONENT; i++) {
                JsonObject config = original.deepCopy();
                List<String> raws = new ArrayList<>();
                List<String> changes = new ArrayList<>();
                int count = 1 + random.nextInt(3);
                for (int k = 0; k < count; k++) {
                    changes.add(mutate(random, config, raws));
                }
                String text = config.toString();
                for (int r = 0; r < raws.size(); r++) {
                    text = text.replace("\"@@raw" + r + "@@\"", raws.get(r));
                }
                String problem;
                try {
                    component.export().accept(DiffusersConfig.parse(Path.of("fuzz", "config.json"), text),
                            new RandomWeights(i));
                    exported++;
                    problem = null;
                } catch (ConfigException | WeightsException e) {
                    problem = LoaderMessages.problem(e.getMessage());
                } catch (Throwable e) { // the point of the test: Errors too
                    problem = e + " at " + Arrays.stream(e.getStackTrace()).limit(4).toList();
                }
                if (problem != null) {
                    failures.add(component.name() + " mutant " + i + " " + changes + ": " + problem);
                }
            }
        }
        int total = COMPONENTS.size() * MUTANTS_PER_COMPONENT;
        System.out.printf("config fuzz: %d mutants, %d exported%n", total, exported);
        assertThat(failures).as("mutants that broke the rules (seed " + SEED + ")").isEmpty();
        // the nudges keep some configs valid, so the exporters get past the checks too
        assertThat(exported).isGreaterThan(total / 20);
    }

    /**
     * One change to {@code config}: a raw value goes in as the placeholder "@@rawN@@" (N its index in {@code
     * raws}), replaced in the text afterwards, since Gson cannot hold NaN or raw numerals and would recurse
     * printing 10,000 levels. Returns what was done.
     */
    private static String mutate(Random random, JsonObject config, List<String> raws) {
        List<String> keys = new ArrayList<>(config.keySet());
        String key = keys.get(random.nextInt(keys.size()));
        JsonElement value = config.get(key);
        switch (random.nextInt(4)) {
            case 0 -> {
                config.remove(key);
                return key + " removed";
            }
            case 1 -> {
                if (value.isJsonArray() && !value.getAsJsonArray().isEmpty()) {
                    JsonArray array = value.getAsJsonArray();
                    int index = random.nextInt(array.size());
                    array.set(index, nudged(random, array.get(index)));
                    return key + "[" + index + "] = " + array.get(index);
                }
                config.add(key, nudged(random, value));
                return key + " = " + config.get(key);
            }
            default -> {
                String raw = VALUES.get(random.nextInt(VALUES.size()));
                JsonPrimitive placeholder = new JsonPrimitive("@@raw" + raws.size() + "@@");
                raws.add(raw);
                String shown = raw.length() <= 40 ? raw : raw.substring(0, 40) + "... (" + raw.length() + " characters)";
                if (value.isJsonArray() && !value.getAsJsonArray().isEmpty() && random.nextBoolean()) {
                    int index = random.nextInt(value.getAsJsonArray().size());
                    value.getAsJsonArray().set(index, placeholder);
                    return key + "[" + index + "] = " + shown;
                }
                config.add(key, placeholder);
                return key + " = " + shown;
            }
        }
    }

    /** A number doubled, halved, plus or minus one, or negated; anything else as it was. */
    private static JsonElement nudged(Random random, JsonElement value) {
        if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isNumber()) {
            return value;
        }
        double number = value.getAsDouble();
        double[] choices = {number * 2, Math.floor(number / 2), number + 1, number - 1, -number};
        double nudged = choices[random.nextInt(choices.length)];
        return nudged == Math.rint(nudged) && Math.abs(nudged) < 1e15 ? new JsonPrimitive((long) nudged)
                : new JsonPrimitive(nudged);
    }
}
