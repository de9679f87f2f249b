package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.TensorRt;
import java.util.Objects;

/**
 * The machine an engine is built for or loaded on: a TensorRT engine only runs on the GPU model and
 * the exact TensorRT version that built it. A record so that the cache logic can be tested on a
 * machine without a GPU by passing any environment.
 *
 * @param gpuName           the CUDA device name, e.g. "NVIDIA H100 80GB HBM3"
 * @param computeCapability "major.minor", e.g. "9.0"
 * @param tensorRtVersion   "10.6.0.26"
 */
public record BuildEnvironment(String gpuName, String computeCapability, String tensorRtVersion) {

    public BuildEnvironment {
        Objects.requireNonNull(gpuName, "gpuName");
        Objects.requireNonNull(computeCapability, "computeCapability");
        Objects.requireNonNull(tensorRtVersion, "tensorRtVersion");
    }

    /** This machine's current CUDA device and loaded TensorRT; fails when either is unavailable. */
    public static BuildEnvironment detect() {
        TensorRt.requireAvailable();
        return new BuildEnvironment(Cuda.deviceName(), Cuda.computeCapability(), TensorRt.version());
    }

    /** "GPU 'NVIDIA H100 80GB HBM3' (compute capability 9.0) with TensorRT 10.6.0.26". */
    public String describe() {
        return "GPU '" + gpuName + "' (compute capability " + computeCapability + ") with TensorRT " + tensorRtVersion;
    }
}
