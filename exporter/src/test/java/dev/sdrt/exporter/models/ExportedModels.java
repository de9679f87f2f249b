package dev.sdrt.exporter.models;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

/** Test helpers: save an exported model and run it on ONNX Runtime; load built-in or edited configs. */
final class ExportedModels {
    private ExportedModels() {
    }

    /** Saves {@code model} as {@code dir/name.onnx} and runs it once on ONNX Runtime (CPU). */
    static Map<String, Tensor> saveAndRun(OnnxModel model, Path dir, String name, Map<String, Tensor> inputs)
            throws IOException {
        Path file = dir.resolve(name + ".onnx");
        model.save(file);
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            return runner.run(inputs);
        }
    }

    /** A built-in architecture config, e.g. {@code "sd15/text_encoder.json"}. */
    static DiffusersConfig builtin(String path) throws IOException {
        URL url = ExportedModels.class.getResource("/dev/sdrt/exporter/arch/" + path);
        if (url == null) {
            throw new IllegalStateException("no built-in config " + path);
        }
        try {
            return DiffusersConfig.load(Path.of(url.toURI()));
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The config.json of {@code folder}, changed by {@code edit} and written to {@code dir}/config.json. */
    static DiffusersConfig edited(Path folder, Path dir, Consumer<JsonObject> edit) throws IOException {
        JsonObject json = DiffusersConfig.load(folder).json();
        edit.accept(json);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), new GsonBuilder().setPrettyPrinting().create().toJson(json));
        return DiffusersConfig.load(dir);
    }

    /** A config written from JSON text into {@code dir}/config.json. */
    static DiffusersConfig written(Path dir, String json) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), json);
        return DiffusersConfig.load(dir);
    }
}
