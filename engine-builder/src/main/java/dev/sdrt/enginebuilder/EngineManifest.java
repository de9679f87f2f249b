package dev.sdrt.enginebuilder;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The JSON file written beside every engine ({@code ENGINE.plan} → {@code ENGINE.plan.json}): where
 * the engine came from, what it accepts, and what it was built on and for. The engine cache keys on
 * it, {@code sdrt engine-info} prints it, and loading checks it against the current machine.
 *
 * @param formatVersion     version of this JSON layout ({@link #FORMAT_VERSION})
 * @param sdrtVersion       the sdrt that built the engine
 * @param createdAt         ISO-8601 build time (UTC)
 * @param cacheKey          SHA-256 over everything that determines the engine ({@link EngineCache#cacheKey})
 * @param engineFile        the engine's file name
 * @param engineSizeBytes   the engine file's size (a cheap check that manifest and engine belong together)
 * @param onnxPath          the ONNX file the engine was built from, as given
 * @param onnx              the ONNX file's hash
 * @param externalData      hashes of the ONNX model's external weight files
 * @param passSpec          the graph passes that made the ONNX ("" for none)
 * @param precision         "fp16", "fp32", "fp16+int8", ... (from the graph's weights, else the request)
 * @param profiles          optimization profiles: per input, min/opt/max shapes
 * @param inputs            the engine's inputs
 * @param outputs           the engine's outputs
 * @param tensorRtVersion   TensorRT that built it
 * @param gpuName           GPU it was built on
 * @param computeCapability that GPU's compute capability
 * @param buildOptions      builder settings
 * @param buildSeconds      wall time of the TensorRT build
 */
public record EngineManifest(
        int formatVersion,
        String sdrtVersion,
        String createdAt,
        String cacheKey,
        String engineFile,
        long engineSizeBytes,
        String onnxPath,
        FileHash onnx,
        List<FileHash> externalData,
        String passSpec,
        String precision,
        List<Map<String, InputShapes>> profiles,
        List<TensorDescription> inputs,
        List<TensorDescription> outputs,
        String tensorRtVersion,
        String gpuName,
        String computeCapability,
        BuildOptions buildOptions,
        double buildSeconds) {

    public static final int FORMAT_VERSION = 1;

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();

    /** Where the manifest of {@code engine} lives: the engine's file name plus ".json". */
    public static Path pathFor(Path engine) {
        return engine.resolveSibling(engine.getFileName() + ".json");
    }

    /** The environment the engine was built for, to compare with the current one. */
    public BuildEnvironment environment() {
        return new BuildEnvironment(gpuName, computeCapability, tensorRtVersion);
    }

    public String toJson() {
        return GSON.toJson(this);
    }

    /**
     * Parses a manifest.
     *
     * @param source names the file in error messages
     * @throws ManifestException when the text is not JSON, is another format version, or lacks fields
     */
    public static EngineManifest fromJson(String json, String source) {
        EngineManifest manifest;
        try {
            manifest = GSON.fromJson(json, EngineManifest.class);
        } catch (JsonParseException | IllegalStateException | NumberFormatException e) {
            throw new ManifestException("engine manifest " + source + " is not valid JSON ("
                    + e.getMessage() + "); delete the engine and its manifest and build again", e);
        }
        if (manifest == null) {
            throw new ManifestException("engine manifest " + source + " is empty; delete the engine and build again");
        }
        manifest.validate(source);
        return manifest;
    }

    private void validate(String source) {
        if (formatVersion != FORMAT_VERSION) {
            throw new ManifestException("engine manifest " + source + " has format version " + formatVersion
                    + "; this sdrt reads version " + FORMAT_VERSION + ". Rebuild the engine with this sdrt");
        }
        List<String> missing = new ArrayList<>();
        checkPresent(missing, "cacheKey", cacheKey);
        checkPresent(missing, "engineFile", engineFile);
        checkPresent(missing, "onnx", onnx);
        checkPresent(missing, "profiles", profiles);
        checkPresent(missing, "inputs", inputs);
        checkPresent(missing, "outputs", outputs);
        checkPresent(missing, "tensorRtVersion", tensorRtVersion);
        checkPresent(missing, "gpuName", gpuName);
        checkPresent(missing, "computeCapability", computeCapability);
        checkPresent(missing, "buildOptions", buildOptions);
        if (!missing.isEmpty()) {
            throw new ManifestException("engine manifest " + source + " is incomplete: no " + String.join(", ", missing)
                    + "; delete the engine and its manifest and build again");
        }
    }

    private static void checkPresent(List<String> missing, String field, Object value) {
        if (value == null) {
            missing.add(field);
        }
    }

    /** Writes the manifest to {@code file} through a temporary file, so readers never see half of it. */
    public void write(Path file) throws IOException {
        Path folder = file.toAbsolutePath().getParent();
        Files.createDirectories(folder);
        Path temp = Files.createTempFile(folder, "." + file.getFileName(), ".tmp");
        try {
            try (Writer out = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
                out.write(toJson());
                out.write('\n');
            }
            Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /**
     * Reads the manifest beside {@code engine}.
     *
     * @throws ManifestException when it is missing or unreadable, saying how to get a good one
     */
    public static EngineManifest readFor(Path engine) {
        return read(pathFor(engine), engine);
    }

    /** Reads a manifest file; {@code engine} (may be null) names the engine in messages. */
    public static EngineManifest read(Path manifestFile, Path engine) {
        String text;
        try (Reader in = Files.newBufferedReader(manifestFile, StandardCharsets.UTF_8)) {
            StringBuilder builder = new StringBuilder();
            char[] buffer = new char[8192];
            for (int n; (n = in.read(buffer)) > 0; ) {
                builder.append(buffer, 0, n);
            }
            text = builder.toString();
        } catch (NoSuchFileException e) {
            throw new ManifestException("no manifest " + manifestFile
                    + (engine == null ? "" : " beside engine " + engine)
                    + ": sdrt only loads engines it built with their manifest; build it with sdrt build", e);
        } catch (IOException e) {
            throw new ManifestException("cannot read engine manifest " + manifestFile + ": " + e, e);
        }
        return fromJson(text, manifestFile.toString());
    }
}
