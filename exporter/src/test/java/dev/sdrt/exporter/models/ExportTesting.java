package dev.sdrt.exporter.models;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.safetensors.SafeTensor;
import dev.sdrt.exporter.safetensors.TensorSource;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** What the model exporter tests share: built-in configs, running an exported graph, float16 feeds. */
final class ExportTesting {
    private ExportTesting() {
    }

    /** A built-in full-size config, e.g. {@code arch("sd15", "unet")}. */
    static DiffusersConfig arch(String model, String component) {
        String resource = "/dev/sdrt/exporter/arch/" + model + "/" + component + ".json";
        try (InputStream in = ExportTesting.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("no built-in config " + resource);
            }
            return DiffusersConfig.parse(Path.of(resource), new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Saves {@code model} under {@code dir} and runs it once on ONNX Runtime CPU. */
    static Map<String, Tensor> run(OnnxModel model, Path dir, Map<String, Tensor> feeds) throws IOException {
        Path file = dir.resolve(model.graph().name() + ".onnx");
        model.save(file);
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            return runner.run(feeds);
        }
    }

    /** The feeds converted to float16, except {@code keepFloat32}. */
    static Map<String, Tensor> toFloat16(Map<String, Tensor> feeds, Set<String> keepFloat32) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        feeds.forEach((name, t) -> out.put(name, keepFloat32.contains(name) ? t : t.castTo(DType.FLOAT16)));
        return out;
    }

    /** A copy of the config file with {@code key} replaced by the JSON {@code value}, in {@code dir}. */
    static DiffusersConfig withSetting(Path fixture, Path dir, String key, String jsonValue) throws IOException {
        JsonObject json = JsonParser.parseString(Files.readString(fixture.resolve("config.json"))).getAsJsonObject();
        json.add(key, JsonParser.parseString(jsonValue));
        Path file = dir.resolve("config.json");
        Files.writeString(file, json.toString());
        return DiffusersConfig.load(file);
    }

    /** A tensor source that hides some names of another (a checkpoint missing tensors). */
    static TensorSource without(TensorSource source, Set<String> hidden) {
        return new TensorSource() {
            @Override
            public List<String> names() {
                return source.names().stream().filter(n -> !hidden.contains(n)).toList();
            }

            @Override
            public boolean contains(String name) {
                return !hidden.contains(name) && source.contains(name);
            }

            @Override
            public SafeTensor tensor(String name) throws IOException {
                if (hidden.contains(name)) {
                    throw new IllegalArgumentException("hidden: " + name);
                }
                return source.tensor(name);
            }

            @Override
            public void close() throws IOException {
                source.close();
            }
        };
    }
}
