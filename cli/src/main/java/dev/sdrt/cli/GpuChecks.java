package dev.sdrt.cli;

import static org.bytedeco.cuda.global.cudart.cudaPeekAtLastError;
import static org.bytedeco.cuda.global.cudart.cudaStreamCaptureStatusNone;
import static org.bytedeco.cuda.global.cudart.cudaStreamIsCapturing;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;

import dev.sdrt.enginebuilder.BuildProgress;
import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.EngineInfo;
import dev.sdrt.enginebuilder.EngineKernelProfile;
import dev.sdrt.enginebuilder.EngineManifest;
import dev.sdrt.enginebuilder.EngineMismatchException;
import dev.sdrt.enginebuilder.PrintingBuildProgress;
import dev.sdrt.runtime.profile.NodeProfile;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.CudaException;
import dev.sdrt.runtime.trt.CudaGraph;
import dev.sdrt.runtime.trt.CudaStream;
import dev.sdrt.runtime.trt.DeviceBuffer;
import dev.sdrt.runtime.trt.KernelProfile;
import dev.sdrt.runtime.trt.SyncCounter;
import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtEngine;
import dev.sdrt.runtime.trt.TrtExecutionContext;
import dev.sdrt.runtime.trt.TrtTensorInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The GPU checks of the engine builder and the TensorRT runtime, as plain methods that throw an
 * {@link AssertionError} on failure. The JUnit suite tagged "gpu" ({@code TrtGpuTest}) calls them, and so does
 * {@code sdrt gpu selftest} ({@link GpuCommand}), which runs them on the GPU host where there is no Maven and no
 * JUnit launcher.
 *
 * <p>They build one engine from the tiny SD UNet fixture (float32, static batch 2, 16×16 latents,
 * TF32 off so float32 stays float32) and reuse it; the first check builds it, later ones reuse it
 * through the engine cache.
 */
public final class GpuChecks {

    /** The fixtures' float32 outputs against TensorRT float32 (kernels differ from PyTorch's). */
    public static final double FP32_TOLERANCE = 1e-3;

    /** One named check. */
    public record Check(String name, Body body) {}

    @FunctionalInterface
    public interface Body {
        void run() throws Exception;
    }

    private final Path fixture;
    private final Path work;
    private final int optLevel;
    private EngineCache cache;
    private EngineCache.Outcome firstBuild;

    /**
     * @param fixtures the shared fixtures folder (holding tiny_sd_unet/)
     * @param work     a scratch folder for engines, manifests and the timing cache
     */
    /** Checks at TensorRT's default builder level (3). */
    public GpuChecks(Path fixtures, Path work) {
        this(fixtures, work, 3);
    }

    /**
     * @param optLevel the builder level of the shared engine: the GPU session's self-test uses 1, since the
     *     tiny float32 build takes about a minute at level 3 and that session's time is short
     */
    public GpuChecks(Path fixtures, Path work, int optLevel) {
        this.fixture = fixtures.resolve("tiny_sd_unet");
        this.work = work;
        this.optLevel = optLevel;
    }

    /** Every check, in the order {@code sdrt gpu selftest} runs them. */
    public List<Check> all() {
        return List.of(
                new Check("gpu and TensorRT load", this::gpuAndTensorRtLoad),
                new Check("build tiny UNet fp32 engine with manifest", this::buildTinyUnetEngine),
                new Check("engine output matches the fixture (<= 1e-3 rel)", this::outputMatchesReference),
                new Check("identical request reuses the engine", this::identicalRequestReusesEngine),
                new Check("plain run makes exactly one sync", this::plainRunMakesOneSync),
                new Check("CUDA graph replay equals eager enqueue", this::graphReplayEqualsEager),
                new Check("a failed capture leaves the stream usable", this::failedCaptureLeavesTheStreamUsable),
                new Check("contexts share one activation buffer", this::contextsShareActivationMemory),
                new Check("engine from another GPU is refused", this::refusesEngineFromAnotherGpu),
                new Check("engine-info reports device memory", this::engineInfoReportsDeviceMemory),
                new Check("kernel profile names and times the engine's kernels", this::kernelProfileCoversTheEngine));
    }

    public void gpuAndTensorRtLoad() {
        require(Cuda.isAvailable(), "CUDA unavailable: " + Cuda.unavailableReason());
        require(TensorRt.isAvailable(), "TensorRT unavailable: " + TensorRt.unavailableReason());
        require(TensorRt.version().startsWith("10.6."), "expected TensorRT 10.6, loaded " + TensorRt.version());
        require(!Cuda.deviceName().isEmpty(), "the GPU reports no name");
    }

    public void buildTinyUnetEngine() throws IOException {
        EngineCache.Outcome outcome = ensureEngine();
        EngineManifest manifest = outcome.manifest();
        require(Files.size(outcome.engine()) == manifest.engineSizeBytes(), "engine size differs from the manifest");
        require(Files.isRegularFile(EngineManifest.pathFor(outcome.engine())), "no manifest beside the engine");
        require("fp32".equals(manifest.precision()), "precision should be fp32, manifest says " + manifest.precision());
        require(manifest.inputs().size() == 3 && manifest.outputs().size() == 1,
                "expected 3 inputs and 1 output, manifest has " + manifest.inputs() + " / " + manifest.outputs());
        require(outcome.profile().isStatic(), "the fixture is static, the profile is " + outcome.profile());
        require(Files.isRegularFile(timingCache()) && Files.size(timingCache()) > 0, "no timing cache written at " + timingCache());
        require(manifest.gpuName().equals(Cuda.deviceName()), "manifest GPU " + manifest.gpuName());
    }

    public void outputMatchesReference() throws IOException {
        try (TrtEngine engine = cache().load(ensureEngine().engine());
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            Map<String, Tensor> outputs = context.run(fixtureInputs(engine), stream);
            Tensor expected = Npy.read(fixture.resolve("out_out_sample.npy"));
            double relative = Tensors.maxRelDiff(outputs.get("out_sample"), expected);
            require(relative <= FP32_TOLERANCE, "max rel diff " + relative + " > " + FP32_TOLERANCE);
        }
    }

    public void identicalRequestReusesEngine() throws IOException {
        EngineCache.Outcome first = ensureEngine();
        FileTime before = Files.getLastModifiedTime(first.engine());
        EngineCache.Outcome again = cache().buildOrReuse(request(), first.engine(), BuildProgress.NONE);
        require(again.reused(), "an identical request rebuilt the engine");
        require(again.manifest().cacheKey().equals(first.manifest().cacheKey()), "cache key changed");
        require(Files.getLastModifiedTime(first.engine()).equals(before), "the engine file was rewritten");
    }

    public void plainRunMakesOneSync() throws IOException {
        try (TrtEngine engine = cache().load(ensureEngine().engine());
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            Map<String, Tensor> inputs = fixtureInputs(engine);
            context.run(inputs, stream); // first run allocates buffers; count the second, steady-state one
            long before = SyncCounter.countOnThisThread();
            context.run(inputs, stream);
            long syncs = SyncCounter.countOnThisThread() - before;
            require(syncs == 1, "a plain run made " + syncs + " synchronizing calls, expected 1");
        }
    }

    public void graphReplayEqualsEager() throws IOException {
        try (TrtEngine engine = cache().load(ensureEngine().engine());
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            Map<String, Tensor> inputs = fixtureInputs(engine);
            Tensor eager = context.run(inputs, stream).get("out_sample");
            // Clear the output so the replay has to write it again.
            context.buffer("out_sample").fillAsync(0, stream);
            try (CudaGraph graph = context.captureGraph(stream)) {
                context.buffer("out_sample").fillAsync(0, stream);
                graph.launch(stream);
                context.downloadAsync("out_sample", stream);
                stream.synchronize();
                Tensor replayed = context.downloaded("out_sample");
                double relative = Tensors.maxRelDiff(replayed, eager);
                require(relative <= 1e-6, "graph replay differs from eager by " + relative);
            }
        }
    }

    /**
     * A capture that CUDA refuses (a synchronizing call inside it) ends with the stream out of
     * capture mode and CUDA's last error cleared, so the same context then runs eagerly, as the
     * device loop does after such a failure.
     */
    public void failedCaptureLeavesTheStreamUsable() throws IOException {
        try (TrtEngine engine = cache().load(ensureEngine().engine());
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            Map<String, Tensor> inputs = fixtureInputs(engine);
            Tensor eager = context.run(inputs, stream).get("out_sample");
            try {
                CudaGraph.capture(stream, s -> {
                    context.enqueue(s);
                    s.synchronize();
                }).close();
                throw new AssertionError("a capture that synchronizes was not refused");
            } catch (CudaException expected) {
                // what the device loop turns into CaptureFailedException
            }
            int[] capturing = {-1};
            Cuda.check(cudaStreamIsCapturing(stream.handle(), capturing), "cudaStreamIsCapturing");
            require(capturing[0] == cudaStreamCaptureStatusNone, "the stream is still capturing (status " + capturing[0] + ")");
            int lastError = cudaPeekAtLastError();
            require(lastError == cudaSuccess, "the failed capture left CUDA's last error set (" + lastError + ")");
            Tensor after = context.run(inputs, stream).get("out_sample");
            require(Tensors.maxRelDiff(after, eager) <= 1e-6, "the eager run after the failed capture differs");
        }
    }

    public void contextsShareActivationMemory() throws IOException {
        try (TrtEngine engine = cache().load(ensureEngine().engine());
                DeviceBuffer shared = DeviceBuffer.allocate(TrtEngine.sharedDeviceMemorySize(List.of(engine)), "shared");
                TrtExecutionContext first = engine.createContext(shared);
                TrtExecutionContext second = engine.createContext(shared);
                CudaStream stream = CudaStream.create()) {
            Map<String, Tensor> inputs = fixtureInputs(engine);
            Tensor a = first.run(inputs, stream).get("out_sample");
            Tensor b = second.run(inputs, stream).get("out_sample");
            Tensor expected = Npy.read(fixture.resolve("out_out_sample.npy"));
            require(Tensors.maxRelDiff(a, expected) <= FP32_TOLERANCE, "first context wrong");
            require(Tensors.maxRelDiff(b, a) <= 1e-6, "contexts sharing activations disagree");
        }
    }

    public void refusesEngineFromAnotherGpu() throws IOException {
        Path original = ensureEngine().engine();
        Path foreign = work.resolve("foreign").resolve(original.getFileName());
        Files.createDirectories(foreign.getParent());
        Files.copy(original, foreign, StandardCopyOption.REPLACE_EXISTING);
        EngineManifest manifest = EngineManifest.readFor(original);
        String otherGpu = "NVIDIA A100-SXM4-80GB";
        new EngineManifest(manifest.formatVersion(), manifest.sdrtVersion(), manifest.createdAt(), manifest.cacheKey(),
                manifest.engineFile(), manifest.engineSizeBytes(), manifest.onnxPath(), manifest.onnx(),
                manifest.externalData(), manifest.passSpec(), manifest.precision(), manifest.profiles(),
                manifest.inputs(), manifest.outputs(), manifest.tensorRtVersion(), otherGpu, "8.0",
                manifest.buildOptions(), manifest.buildSeconds()).write(EngineManifest.pathFor(foreign));
        try {
            cache().load(foreign).close();
        } catch (EngineMismatchException expected) {
            String message = expected.getMessage();
            require(message.contains(otherGpu) && message.contains(Cuda.deviceName()),
                    "the refusal should name both GPUs: " + message);
            return;
        }
        throw new AssertionError("an engine whose manifest names " + otherGpu + " was loaded");
    }

    public void engineInfoReportsDeviceMemory() throws IOException {
        String info = EngineInfo.describe(ensureEngine().engine(), cache().environment());
        require(info.contains("device memory"), "engine-info shows no device memory:\n" + info);
        require(info.contains("sample"), "engine-info shows no inputs:\n" + info);
    }

    public void kernelProfileCoversTheEngine() throws IOException {
        KernelProfile profile = EngineKernelProfile.of(ensureEngine().engine(), 5);
        System.out.print(profile.toMarkdown(10));
        List<NodeProfile.Node> nodes = profile.nodes().nodes();
        require(!nodes.isEmpty(), "the profile found no graph nodes");
        long named = nodes.stream().filter(node -> !node.name().startsWith("kernel (name unavailable")
                && !node.name().startsWith("graph node of type")).count();
        require(named * 2 >= nodes.size(), "only " + named + " of " + nodes.size() + " nodes have kernel names");
        require(profile.plainReplayMillis() > 0, "plain replay took no time");
        // Events serialize and add a little per node, so the nodes sum to about the instrumented replay;
        // less than half the plain replay would mean time went untimed.
        require(profile.nodes().totalMillis() >= 0.5 * profile.plainReplayMillis(), String.format(
                "the nodes sum to %.3f ms, the plain replay takes %.3f ms", profile.nodes().totalMillis(), profile.plainReplayMillis()));
        // On one stream the nodes sum to the instrumented replay; TensorRT's auxiliary streams can run
        // branches side by side, which count twice, so allow up to double.
        require(profile.nodes().totalMillis() <= 2 * profile.instrumentedMillis() + 0.01, String.format(
                "the nodes sum to %.3f ms, over twice the instrumented replay's %.3f ms",
                profile.nodes().totalMillis(), profile.instrumentedMillis()));
    }

    // ---------------------------------------------------------------- shared state

    private EngineCache cache() {
        if (cache == null) {
            cache = EngineCache.forThisMachine();
        }
        return cache;
    }

    private Path timingCache() {
        return work.resolve("timing.cache");
    }

    /** The request all checks share: float32 fixture, static batch 2 at 16×16, TF32 off. */
    private EngineBuildRequest request() {
        return EngineBuildRequest.builder(fixture.resolve("model.onnx"))
                .batch(2)
                .size(DimRange.fixed(16))
                .tokens(DimRange.fixed(8))
                .staticShapes(true)
                .tf32(false)
                .optLevel(optLevel)
                .timingCache(timingCache())
                .build();
    }

    private synchronized EngineCache.Outcome ensureEngine() throws IOException {
        if (firstBuild == null) {
            Files.createDirectories(work);
            firstBuild = cache().buildOrReuse(request(), work.resolve("tiny_sd_unet_fp32.plan"),
                    new PrintingBuildProgress(System.out));
        }
        return firstBuild;
    }

    /** The fixture's reference inputs, by engine input name. */
    private Map<String, Tensor> fixtureInputs(TrtEngine engine) throws IOException {
        Map<String, Tensor> inputs = new LinkedHashMap<>();
        for (TrtTensorInfo input : engine.inputs()) {
            inputs.put(input.name(), Npy.read(fixture.resolve("in_" + input.name() + ".npy")));
        }
        return inputs;
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }
}
