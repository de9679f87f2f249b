package dev.sdrt.cli;

import dev.sdrt.runtime.loop.DeviceTensor;
import dev.sdrt.runtime.loop.LoopModel;
import dev.sdrt.runtime.loop.TrtLoopDevice;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensors;
import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.SyncCounter;
import dev.sdrt.runtime.trt.TensorRt;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The GPU checks of the device loop on TensorRT ({@link TrtLoopDevice}), as plain methods that throw
 * an {@link AssertionError} on failure: the cli module's JUnit suite tagged "gpu"
 * ({@code TrtLoopDeviceGpuTest}) calls them, and so does {@code sdrt gpu loopcheck [--work DIR]}
 * ({@link GpuCommand}, {@code gpu-run.sh loopcheck}) on the GPU host, where there is no Maven.
 * They export the tiny SD pipeline with DeepCache graphs, build its engines with {@code sdrt
 * build-pipeline} (float32, TF32 off, dynamic batch 1..2 images so that unguided, guided and
 * two-image requests all run), and compare the device loop on TensorRT with the host loop on ONNX
 * Runtime: final latents within {@link #TOLERANCE}, exactly one counted synchronization per batch,
 * with and without CUDA-graph replay, and with DeepCache.
 */
public final class DeviceLoopGpuChecks {

    /** Float32 engines (TF32 off) against ONNX Runtime on the CPU: max |diff| / max |reference| of the latents. */
    public static final double TOLERANCE = 1e-3;

    /** One named check. */
    public record Check(String name, Body body) {
    }

    @FunctionalInterface
    public interface Body {
        void run() throws Exception;
    }

    private final Path work;
    private Path pipeline;

    public DeviceLoopGpuChecks(Path work) {
        this.work = work;
    }

    /** Every check, in order (later ones use the engines the second builds). */
    public List<Check> all() {
        return List.of(
                new Check("gpu and TensorRT load", this::gpuAndTensorRtLoad),
                new Check("build-pipeline builds every engine with a manifest", this::buildsEveryEngine),
                new Check("build-pipeline again reuses every engine", this::rebuildReuses),
                new Check("eager loop matches the host loop, 1 sync per batch", this::eagerMatchesHost),
                new Check("replayed loop matches the host loop, 1 sync per batch", this::replayMatchesHost),
                new Check("unguided and two-image requests on dynamic engines", this::otherShapes),
                new Check("DeepCache N=3 matches the host loop", this::deepCacheMatchesHost),
                new Check("past four shapes the oldest is freed; later requests still match", this::evictedShapesAreFreed),
                new Check("a missing engine is named with its build command", this::missingEngineIsNamed),
                new Check("a wrongly shaped output is refused by name", this::wrongOutputShapeIsRefused));
    }

    public void gpuAndTensorRtLoad() {
        require(TensorRt.isAvailable(), "TensorRT unavailable: " + TensorRt.unavailableReason());
        require(!Cuda.deviceName().isEmpty(), "the GPU reports no name");
    }

    public void buildsEveryEngine() throws Exception {
        Path folder = pipeline();
        PipelineSpec spec = PipelineSpec.read(folder);
        for (String file : List.of(spec.unet, spec.vaeDecoder, spec.schedulerStep, spec.schedulerStepGuided, spec.deepCacheFull,
                spec.deepCacheShallow)) {
            Path plan = TrtLoopDevice.planFor(folder.resolve(file));
            require(Files.isRegularFile(plan.resolveSibling(plan.getFileName() + ".json")), "no manifest beside " + plan);
        }
    }

    public void rebuildReuses() throws Exception {
        String out = sdrt(buildArgs(pipeline()));
        long reused = out.lines().filter(l -> l.trim().startsWith("reused")).count();
        require(reused == 6 && !out.contains(" built in "), "expected 6 engines reused, got:\n" + out);
    }

    public void eagerMatchesHost() throws Exception {
        compare(GenerationRequest.of("a fox").withSteps(4).withSeed(3).withGuidanceScale(7.5), false);
        compare(GenerationRequest.of("a fox").withSteps(4).withSeed(3).withScheduler("dpm++2m"), false);
    }

    public void replayMatchesHost() throws Exception {
        compare(GenerationRequest.of("a fox").withSteps(4).withSeed(3), true);
        // Ancestral: the per-step noise table is uploaded each request; a replay must read the new one.
        compare(GenerationRequest.of("a boat").withSteps(5).withSeed(8).withScheduler("euler-a"), true);
    }

    public void otherShapes() throws Exception {
        compare(GenerationRequest.of("a tree").withSteps(3).withSeed(4).withGuidanceScale(1), true);
        compare(GenerationRequest.of("a tree").withSteps(3).withSeed(4).withBatchSize(2), true);
        compare(GenerationRequest.of("a tree").withSteps(3).withSeed(4).withBatchSize(2), false);
    }

    public void deepCacheMatchesHost() throws Exception {
        compare(GenerationRequest.of("a house").withSteps(6).withSeed(5).withDeepCache(3, false), true);
        compare(GenerationRequest.of("a house").withSteps(6).withSeed(5).withDeepCache(3, false), false);
    }

    /**
     * Seven requests over five step counts on one replaying pipeline: the fifth evicts the first
     * workspace (its CUDA graph, tensors and the contexts bound to them are freed), and the shapes
     * asked for again are set up afresh, perhaps at the same addresses. Every result matches the host.
     */
    public void evictedShapesAreFreed() throws Exception {
        Path folder = pipeline();
        try (Pipeline host = Pipeline.open(folder, 0); TrtLoopDevice device = new TrtLoopDevice();
                Pipeline p = Pipeline.openOnDevice(folder, 0, 4, device, true)) {
            for (int steps : new int[] {2, 3, 4, 5, 6, 2, 3}) {
                GenerationRequest request = GenerationRequest.of("a kite").withSteps(steps).withSeed(9);
                double rel = Tensors.maxRelDiff(p.generate(request, (d, t) -> { }).latents(),
                        host.generate(request, (d, t) -> { }).latents());
                System.out.printf(Locale.ROOT, "     %d steps: latents max rel diff %.2e%n", steps, rel);
                require(rel <= TOLERANCE, steps + " steps: latents differ from the host loop by " + rel);
            }
        }
    }

    public void missingEngineIsNamed() throws Exception {
        Path textEncoder = pipeline().resolve(PipelineSpec.read(pipeline()).textEncoder);
        try (TrtLoopDevice device = new TrtLoopDevice()) {
            device.load(textEncoder).close();
        } catch (NoSuchFileException expected) {
            require(expected.getMessage().contains("text_encoder.plan") && expected.getMessage().contains("sdrt build-pipeline"),
                    "the message should name the engine and the command: " + expected.getMessage());
            return;
        }
        throw new AssertionError("loading " + textEncoder + " without an engine did not fail");
    }

    public void wrongOutputShapeIsRefused() throws Exception {
        PipelineSpec spec = PipelineSpec.read(pipeline());
        try (TrtLoopDevice device = new TrtLoopDevice(); LoopModel vae = device.load(pipeline().resolve(spec.vaeDecoder))) {
            long size = spec.defaultHeight / spec.vaeScaleFactor;
            DeviceTensor latent = device.allocate("latent", DType.FLOAT32, 1, spec.latentChannels, size, size);
            DeviceTensor image = device.allocate("image", DType.FLOAT32, 1, 3, spec.defaultHeight, spec.defaultWidth + 8);
            try {
                device.launch(vae, Map.of("latent_sample", latent), Map.of("sample", image));
            } catch (IllegalStateException expected) {
                require(expected.getMessage().contains("vae_decoder.plan") && expected.getMessage().contains("'sample'"),
                        "the refusal should name the engine and the output: " + expected.getMessage());
                return;
            }
            throw new AssertionError("an image buffer of the wrong width was accepted");
        }
    }

    // ---------------------------------------------------------------- shared

    /** Host loop (ONNX Runtime) against the device loop on TensorRT, twice in a row on the device. */
    private void compare(GenerationRequest request, boolean replay) throws Exception {
        Path folder = pipeline();
        GeneratedImage host;
        try (Pipeline p = Pipeline.open(folder, 0)) {
            host = p.generate(request, (d, t) -> { });
        }
        try (TrtLoopDevice device = new TrtLoopDevice(); Pipeline p = Pipeline.openOnDevice(folder, 0, 4, device, replay)) {
            for (int run = 0; run < 2; run++) {
                long deviceBefore = device.synchronizations();
                long threadBefore = SyncCounter.countOnThisThread();
                GeneratedImage onDevice = p.generate(request, (d, t) -> { });
                long deviceSyncs = device.synchronizations() - deviceBefore;
                long counted = SyncCounter.countOnThisThread() - threadBefore;
                String what = String.format(Locale.ROOT, "%s, %s, %d image(s), guidance %.1f, deepcache %d, %s, run %d",
                        request.prompt(), request.scheduler() == null ? "euler" : request.scheduler(), request.batchSize(),
                        request.guidanceScale(), request.deepCacheInterval(), replay ? "replay" : "eager", run + 1);
                require(deviceSyncs == 1 && counted == 1, what + ": " + deviceSyncs + " device / " + counted
                        + " counted synchronizations, expected 1");
                require(onDevice.timings().synchronizations() == 1, what + ": timings report "
                        + onDevice.timings().synchronizations() + " synchronizations");
                double rel = Tensors.maxRelDiff(onDevice.latents(), host.latents());
                System.out.printf(Locale.ROOT, "     %s: latents max rel diff %.2e; enqueue %.2f ms, wait %.2f ms%n", what, rel,
                        onDevice.timings().deviceEnqueueMs(), onDevice.timings().deviceWaitMs());
                require(rel <= TOLERANCE, what + ": latents differ from the host loop by " + rel + " (> " + TOLERANCE + ")");
            }
        }
    }

    private synchronized Path pipeline() throws Exception {
        if (pipeline == null) {
            Path folder = work.resolve("tiny-deepcache");
            if (!Files.isRegularFile(folder.resolve(PipelineSpec.FILE_NAME))) {
                sdrt("export-pipeline", "--arch", "tiny", "--random-weights", "--seed", "2", "--deepcache-branch", "0",
                        "--out", folder.toString());
            }
            sdrt(buildArgs(folder));
            pipeline = folder;
        }
        return pipeline;
    }

    private static String[] buildArgs(Path folder) {
        return new String[] {"build-pipeline", "--model", folder.toString(), "--dynamic", "--batch", "1..1..2", "--no-tf32",
            "--opt-level", "1"};
    }

    /** Runs the CLI in this JVM; fails with its output unless it exits 0. */
    private static String sdrt(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = SdrtMain.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
        System.out.print(out);
        require(code == 0, "sdrt " + String.join(" ", args) + " exited " + code + ":\n" + out + err);
        return out.toString();
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }
}
