package dev.sdrt.enginebuilder;

import com.google.gson.Gson;
import dev.sdrt.runtime.trt.TrtEngine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.logging.Logger;

/**
 * The front door for engine builds: an engine is rebuilt only when something that determines it
 * changed, every engine gets its manifest, and an engine made for another machine is refused.
 *
 * <p>The cache key covers the ONNX file's and its external data's hashes, the pass spec, the builder
 * options, the optimization profiles, the TensorRT version and the GPU (name and compute capability).
 * An identical request finds its engine by the manifest beside the output path and reuses it.
 *
 * <p>The "current machine" is a {@link BuildEnvironment} passed in, and the TensorRT work is a {@link
 * Backend}, so all of this runs in tests without a GPU.
 */
public final class EngineCache {

    private static final Logger LOG = Logger.getLogger(EngineCache.class.getName());
    private static final Gson KEY_JSON = new Gson();

    /** Builds a plan file; {@link TrtEngineBuilder} is the real one. */
    @FunctionalInterface
    public interface Backend {
        /**
         * Builds the engine for {@code request} with {@code profile} and writes it to {@code planFile}
         * (atomically: a failed build leaves no file there).
         *
         * @return the engine's inputs and outputs
         */
        BuiltEngine build(EngineBuildRequest request, OnnxSummary model, ShapeProfile profile, Path planFile,
                BuildProgress progress) throws IOException;
    }

    /** What a backend reports about the engine it wrote. */
    public record BuiltEngine(List<TensorDescription> inputs, List<TensorDescription> outputs) {
        public BuiltEngine {
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }
    }

    /** The result of {@link #buildOrReuse}. */
    public record Outcome(Path engine, EngineManifest manifest, boolean reused, ShapeProfile profile) {}

    /** The fields the cache key is computed from, in a fixed order (serialized as JSON, then hashed). */
    record KeyFields(String onnxSha256, List<String> externalDataSha256, String passSpec, BuildOptions buildOptions,
            List<Map<String, InputShapes>> profiles, String tensorRtVersion, String gpuName,
            String computeCapability) {}

    private final BuildEnvironment environment;
    private final Backend backend;

    public EngineCache(BuildEnvironment environment, Backend backend) {
        this.environment = Objects.requireNonNull(environment, "environment");
        this.backend = Objects.requireNonNull(backend, "backend");
    }

    /** The cache on this machine's GPU with the TensorRT builder. */
    public static EngineCache forThisMachine() {
        return new EngineCache(BuildEnvironment.detect(), new TrtEngineBuilder());
    }

    public BuildEnvironment environment() {
        return environment;
    }

    /**
     * Makes sure {@code engine} holds the engine for {@code request}: reuses it when its manifest has
     * the same cache key (and the file is the size the manifest says), else builds it and writes the
     * manifest.
     */
    public Outcome buildOrReuse(EngineBuildRequest request, Path engine, BuildProgress progress) throws IOException {
        return buildOrReuse(keyed(request), engine, progress);
    }

    /**
     * {@link #buildOrReuse} with the engine's file named by its cache key: {@code store/STEM-KEY.plan}
     * (KEY: the key's first 16 hex digits). Requests that come out the same (model content, profile,
     * options, GPU, TensorRT) share one engine wherever their ONNX files are, so a VAE decoder
     * hard-linked into several pipeline folders is built once.
     */
    public Outcome buildOrReuseIn(Path store, String stem, EngineBuildRequest request, BuildProgress progress)
            throws IOException {
        if (!stem.matches("[A-Za-z0-9._@+=-]+")) {
            throw new IllegalArgumentException("engine name '" + stem + "' may hold only letters, digits and ._@+=-");
        }
        Keyed keyed = keyed(request);
        return buildOrReuse(keyed, store.resolve(stem + "-" + keyed.key().substring(0, 16) + ".plan"), progress);
    }

    /** A request with everything its cache key is made of. */
    private record Keyed(EngineBuildRequest request, OnnxSummary model, ShapeProfile profile, OnnxFingerprint fingerprint,
            BuildOptions options, List<Map<String, InputShapes>> profiles, String key) {
    }

    private Keyed keyed(EngineBuildRequest request) throws IOException {
        OnnxSummary model = OnnxSummary.read(request.onnx());
        ShapeProfile profile = ProfileDeriver.derive(model.inputs(), request);
        for (String note : profile.notes()) {
            LOG.info(note);
        }
        OnnxFingerprint fingerprint = OnnxFingerprint.of(request.onnx(), model.externalDataFiles());
        BuildOptions options = BuildOptions.of(request);
        List<Map<String, InputShapes>> profiles = List.of(profile.inputs());
        String key = cacheKey(fingerprint, request.passSpec(), options, profiles, environment);
        return new Keyed(request, model, profile, fingerprint, options, profiles, key);
    }

    private Outcome buildOrReuse(Keyed keyed, Path engine, BuildProgress progress) throws IOException {
        EngineBuildRequest request = keyed.request();
        OnnxSummary model = keyed.model();
        ShapeProfile profile = keyed.profile();
        OnnxFingerprint fingerprint = keyed.fingerprint();
        BuildOptions options = keyed.options();
        List<Map<String, InputShapes>> profiles = keyed.profiles();
        String key = keyed.key();

        EngineManifest existing = reusable(engine, key);
        if (existing != null) {
            return new Outcome(engine, existing, true, profile);
        }

        // Remove the old manifest first: should the build die half-way, no manifest may vouch for
        // whatever plan file is left.
        Path manifestFile = EngineManifest.pathFor(engine);
        Files.deleteIfExists(manifestFile);
        Files.createDirectories(engine.toAbsolutePath().getParent());
        long started = System.nanoTime();
        BuiltEngine built = backend.build(request, model, profile, engine, progress);
        double seconds = (System.nanoTime() - started) / 1e9;

        String precision = model.precision() != null ? model.precision()
                : request.precisionHint() != null ? request.precisionHint() : "unknown";
        EngineManifest manifest = new EngineManifest(EngineManifest.FORMAT_VERSION, SdrtVersion.get(),
                Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(), key, engine.getFileName().toString(),
                Files.size(engine), request.onnx().toString(), fingerprint.model(), fingerprint.externalData(),
                request.passSpec(), precision, profiles, built.inputs(), built.outputs(),
                environment.tensorRtVersion(), environment.gpuName(), environment.computeCapability(), options,
                Math.round(seconds * 1000) / 1000.0);
        manifest.write(manifestFile);
        return new Outcome(engine, manifest, false, profile);
    }

    /** The existing manifest when the engine beside it can be reused for {@code key}, else null. */
    private EngineManifest reusable(Path engine, String key) throws IOException {
        if (!Files.isRegularFile(engine) || !Files.isRegularFile(EngineManifest.pathFor(engine))) {
            return null;
        }
        EngineManifest manifest;
        try {
            manifest = EngineManifest.readFor(engine);
        } catch (ManifestException unreadable) {
            LOG.warning(unreadable.getMessage() + " (rebuilding)");
            return null;
        }
        if (!key.equals(manifest.cacheKey())) {
            LOG.info("engine " + engine + " was built from another request or on another machine; rebuilding");
            return null;
        }
        if (Files.size(engine) != manifest.engineSizeBytes()) {
            LOG.warning("engine " + engine + " is " + Files.size(engine) + " bytes but its manifest says "
                    + manifest.engineSizeBytes() + "; rebuilding");
            return null;
        }
        return manifest;
    }

    /**
     * The cache key: SHA-256 over the model's content hashes, pass spec, builder options, profiles,
     * TensorRT version and GPU. File names and paths are left out: the same model copied elsewhere
     * gives the same engine.
     */
    public static String cacheKey(OnnxFingerprint fingerprint, String passSpec, BuildOptions options,
            List<Map<String, InputShapes>> profiles, BuildEnvironment environment) {
        KeyFields fields = new KeyFields(fingerprint.model().sha256(),
                fingerprint.externalData().stream().map(FileHash::sha256).toList(), passSpec, options, profiles,
                environment.tensorRtVersion(), environment.gpuName(), environment.computeCapability());
        return FileHash.sha256(KEY_JSON.toJson(fields));
    }

    /**
     * Checks that {@code engine} may be loaded on this machine and returns its manifest.
     *
     * @throws ManifestException when the manifest is missing, corrupt, or does not match the file
     * @throws EngineMismatchException when it was built for another GPU or TensorRT version
     */
    public EngineManifest verifyLoadable(Path engine) throws IOException {
        return verifyLoadable(engine, environment);
    }

    /**
     * Loads {@code engine} after {@link #verifyLoadable(Path)}: an engine from another GPU or TensorRT
     * version is refused, never handed to TensorRT.
     */
    public TrtEngine load(Path engine) throws IOException {
        verifyLoadable(engine);
        return TrtEngine.load(engine);
    }

    /** {@link #verifyLoadable(Path)} against a given environment. */
    public static EngineManifest verifyLoadable(Path engine, BuildEnvironment here) throws IOException {
        if (!Files.isRegularFile(engine)) {
            throw new java.nio.file.NoSuchFileException(engine.toString(), null, "engine file not found");
        }
        EngineManifest manifest = EngineManifest.readFor(engine);
        BuildEnvironment builtFor = manifest.environment();
        boolean sameGpu = builtFor.gpuName().equals(here.gpuName())
                && builtFor.computeCapability().equals(here.computeCapability());
        boolean sameTensorRt = builtFor.tensorRtVersion().equals(here.tensorRtVersion());
        if (!sameGpu || !sameTensorRt) {
            String differs = !sameGpu && !sameTensorRt ? "another GPU and another TensorRT version"
                    : !sameGpu ? "another GPU" : "another TensorRT version";
            throw new EngineMismatchException("refusing to load engine " + engine + ": it was built for " + differs
                    + ". Built for: " + builtFor.describe() + ". This machine: " + here.describe()
                    + ". A TensorRT engine only runs on the GPU model and TensorRT version that built it;"
                    + " rebuild it here with sdrt build.", builtFor, here);
        }
        long size = Files.size(engine);
        if (size != manifest.engineSizeBytes()) {
            throw new ManifestException("engine " + engine + " is " + size + " bytes but its manifest says "
                    + manifest.engineSizeBytes() + ": the manifest belongs to another build; rebuild the engine");
        }
        return manifest;
    }
}
