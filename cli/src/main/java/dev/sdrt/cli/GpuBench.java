package dev.sdrt.cli;

import dev.sdrt.enginebuilder.BuildEnvironment;
import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.EngineInfo;
import dev.sdrt.enginebuilder.EngineKernelProfile;
import dev.sdrt.enginebuilder.EngineManifest;
import dev.sdrt.enginebuilder.PrintingBuildProgress;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.CudaEvent;
import dev.sdrt.runtime.trt.CudaGraph;
import dev.sdrt.runtime.trt.CudaStream;
import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtEngine;
import dev.sdrt.runtime.trt.TrtExecutionContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Builds an engine and measures it, for the numbers in BENCHMARKS.md; {@code sdrt gpu bench} ({@link GpuCommand})
 * runs it on the GPU host from a folder of jars:
 * <pre>
 * sdrt gpu bench build --onnx X --out Y
 *      [--batch 2 | 1..2..4] [--height 64] [--width 64] [--tokens 77] [--static] [--opt-level 3]
 *      [--workspace-mib N] [--timing-cache F] [--refit] [--no-tf32] [--pass-spec S]
 * sdrt gpu bench latency --engine Y [--runs 100] [--warmup 20]
 * sdrt gpu bench all --onnx X --out Y [build options] [--runs N] [--warmup N]
 * sdrt gpu bench compare --engine Y --reference Z
 * </pre>
 * Latency is timed with CUDA events around each call and reported as the median (and p10/p90) of
 * {@code --runs} calls (at least 100), for (a) eager enqueueV3 and (b) replay of a CUDA graph
 * captured from one enqueue, on seeded random inputs at the profile's opt shapes ({@code sdrt profile
 * ENGINE.plan} times every kernel of one call). {@code compare} runs two engines of one graph (int8
 * and fp16, say) on the same inputs and gives the cosine of their outputs. Every result is a row of one
 * table, printed last.
 */
public final class GpuBench {

    private final Map<String, String> rows = new LinkedHashMap<>();

    /** The build options of {@code bench build} and {@code bench all}, as the engine cache takes them. */
    record BuildOptions(Path onnx, Path out, String batch, String height, String width, String tokens,
            boolean staticShapes, int optLevel, long workspaceMib, Path timingCache, boolean refit, boolean tf32,
            String passSpec) {}

    /** Needs a usable GPU and TensorRT: the table starts with both. */
    GpuBench() {
        rows.put("GPU", Cuda.deviceName() + " (sm " + Cuda.computeCapability() + ")");
        rows.put("TensorRT", TensorRt.version());
    }

    Path build(BuildOptions options) throws IOException {
        Path out = options.out();
        EngineBuildRequest.Builder request = EngineBuildRequest.builder(options.onnx())
                .batch(DimRange.parse(options.batch()))
                .height(DimRange.parse(options.height()))
                .width(DimRange.parse(options.width()))
                .tokens(DimRange.parse(options.tokens()))
                .staticShapes(options.staticShapes())
                .optLevel(options.optLevel())
                .workspaceBytes(options.workspaceMib() << 20)
                .refit(options.refit())
                .tf32(options.tf32())
                .passSpec(options.passSpec());
        if (options.timingCache() != null) {
            request.timingCache(options.timingCache());
        }
        EngineCache cache = EngineCache.forThisMachine();
        EngineCache.Outcome outcome = cache.buildOrReuse(request.build(), out, new PrintingBuildProgress(System.out));
        EngineManifest manifest = outcome.manifest();
        rows.put("engine", out.toString());
        rows.put("precision / passes", manifest.precision() + " / " + (manifest.passSpec().isEmpty() ? "(none)" : manifest.passSpec()));
        rows.put("profile", outcome.profile().inputs().toString());
        rows.put("build time", String.format(Locale.ROOT, "%.1f s%s", manifest.buildSeconds(),
                outcome.reused() ? " (reused: this run did not rebuild)" : ""));
        rows.put("engine size", EngineInfo.formatBytes(Files.size(out)));
        return out;
    }

    void latency(Path enginePath, int runs, int warmup) throws IOException {
        EngineCache.verifyLoadable(enginePath, BuildEnvironment.detect());
        long freeBefore = Cuda.memoryInfo()[0];
        try (TrtEngine engine = TrtEngine.load(enginePath);
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create();
                CudaEvent start = CudaEvent.create();
                CudaEvent end = CudaEvent.create()) {
            long used = freeBefore - Cuda.memoryInfo()[0];
            rows.put("device memory (activations)", EngineInfo.formatBytes(engine.deviceMemorySize()));
            rows.put("device memory (engine + context, measured)", EngineInfo.formatBytes(used));

            Map<String, Tensor> inputs = EngineKernelProfile.randomInputsAtOptShapes(engine, new Random(42));
            context.run(inputs, stream); // sets shapes, allocates and uploads once
            rows.put("inputs", describe(inputs));

            float[] eager = time(runs, warmup, stream, start, end, () -> context.enqueue(stream));
            rows.put("eager enqueueV3, median of " + runs, summary(eager));
            try (CudaGraph graph = context.captureGraph(stream)) {
                stream.synchronize();
                float[] replay = time(runs, warmup, stream, start, end, () -> graph.launch(stream));
                rows.put("CUDA graph replay, median of " + runs, summary(replay));
            }
        }
    }

    /**
     * One call of {@code enginePath} and of {@code referencePath} on the same seeded random inputs (at
     * the engine's opt shapes): per output, the cosine similarity and max relative difference against
     * the reference. For an int8 or fp8 engine against the fp16 engine of the same graph, this is
     * the error of one denoising step.
     */
    void compare(Path enginePath, Path referencePath) throws IOException {
        BuildEnvironment here = BuildEnvironment.detect();
        EngineCache.verifyLoadable(enginePath, here);
        EngineCache.verifyLoadable(referencePath, here);
        Map<String, Tensor> outputs;
        Map<String, Tensor> inputs;
        try (TrtEngine engine = TrtEngine.load(enginePath);
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            inputs = EngineKernelProfile.randomInputsAtOptShapes(engine, new Random(42));
            outputs = context.run(inputs, stream);
        }
        Map<String, Tensor> reference;
        try (TrtEngine engine = TrtEngine.load(referencePath);
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            reference = context.run(inputs, stream);
        }
        rows.put("engine vs reference", enginePath.getFileName() + " vs " + referencePath.getFileName());
        rows.put("inputs", describe(inputs));
        for (Map.Entry<String, Tensor> output : outputs.entrySet()) {
            Tensor expected = reference.get(output.getKey());
            if (expected == null) {
                rows.put("output " + output.getKey(), "the reference has no such output");
                continue;
            }
            rows.put("output " + output.getKey(), String.format(Locale.ROOT, "cosine %.6f, max rel diff %.3e",
                    Tensors.cosine(output.getValue().toFloatArray(), expected.toFloatArray()),
                    Tensors.maxRelDiff(output.getValue(), expected)));
        }
    }

    /** Times {@code runs} calls with events around each, after {@code warmup} untimed ones. */
    private static float[] time(int runs, int warmup, CudaStream stream, CudaEvent start, CudaEvent end, Runnable call) {
        for (int i = 0; i < warmup; i++) {
            call.run();
        }
        stream.synchronize();
        float[] millis = new float[runs];
        for (int i = 0; i < runs; i++) {
            start.record(stream);
            call.run();
            end.record(stream);
            millis[i] = end.elapsedMillisSince(start);
        }
        return millis;
    }

    private static String summary(float[] millis) {
        float[] sorted = millis.clone();
        Arrays.sort(sorted);
        double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2]
                : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2.0;
        return String.format(Locale.ROOT, "%.3f ms (p10 %.3f, p90 %.3f, min %.3f)", median,
                sorted[sorted.length / 10], sorted[sorted.length * 9 / 10], sorted[0]);
    }

    private static String describe(Map<String, Tensor> inputs) {
        StringBuilder text = new StringBuilder();
        inputs.forEach((name, tensor) -> text.append(text.length() == 0 ? "" : ", ").append(name).append(' ').append(tensor));
        return text.toString();
    }

    void printTable() {
        int width = rows.keySet().stream().mapToInt(String::length).max().orElse(10);
        System.out.printf("| %-" + width + "s | %s |%n", "metric", "value");
        System.out.printf("|-%s-|-%s-|%n", "-".repeat(width), "-".repeat(5));
        rows.forEach((key, value) -> System.out.printf("| %-" + width + "s | %s |%n", key, value));
    }
}
