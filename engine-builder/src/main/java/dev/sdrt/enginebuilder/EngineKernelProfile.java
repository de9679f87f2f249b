package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.trt.CudaStream;
import dev.sdrt.runtime.trt.KernelProfile;
import dev.sdrt.runtime.trt.KernelProfiler;
import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtEngine;
import dev.sdrt.runtime.trt.TrtExecutionContext;
import dev.sdrt.runtime.trt.TrtTensorInfo;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Where an engine's time goes: its kernels timed one by one ({@link KernelProfiler}) for one call on
 * seeded random inputs at the profile's opt shapes, the inputs {@code GpuBench latency} times. What
 * {@code sdrt profile ENGINE.plan} prints; for an int8 or fp8 engine it shows how much of the time
 * ran in low precision and how much went to reformatting.
 */
public final class EngineKernelProfile {

    private EngineKernelProfile() {}

    /** Loads {@code enginePath} (refused when built for another GPU or TensorRT) and profiles one call. */
    public static KernelProfile of(Path enginePath, int runs) throws IOException {
        if (!TensorRt.isAvailable()) {
            throw new IllegalStateException("profiling an engine needs an NVIDIA GPU and TensorRT: " + TensorRt.unavailableReason());
        }
        EngineCache.verifyLoadable(enginePath, BuildEnvironment.detect());
        try (TrtEngine engine = TrtEngine.load(enginePath);
                TrtExecutionContext context = engine.createContext();
                CudaStream stream = CudaStream.create()) {
            context.run(randomInputsAtOptShapes(engine, new Random(42)), stream); // sets shapes, uploads once
            return KernelProfiler.profile(stream, context::enqueue, runs);
        }
    }

    /**
     * Seeded random inputs for every input of {@code engine}, at profile 0's opt shape where dynamic (what {@code sdrt
     * gpu bench latency} and {@code compare} time).
     */
    public static Map<String, Tensor> randomInputsAtOptShapes(TrtEngine engine, Random random) {
        Map<String, Tensor> inputs = new LinkedHashMap<>();
        for (TrtTensorInfo input : engine.inputs()) {
            long[] shape = input.isDynamic() ? engine.profileShapes(input.name(), 0)[1] : input.shape();
            inputs.put(input.name(), RandomInputs.forInput(input.name(), input.dtype(), shape, random));
        }
        return inputs;
    }
}
