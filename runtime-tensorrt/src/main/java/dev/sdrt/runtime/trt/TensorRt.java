package dev.sdrt.runtime.trt;

import static org.bytedeco.tensorrt.global.nvinfer.createInferRuntime;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.tensorrt.global.nvinfer;
import org.bytedeco.tensorrt.global.nvonnxparser;
import org.bytedeco.tensorrt.nvinfer.IRuntime;

/**
 * TensorRT as a library: whether it loads, which version it is, and the one {@link IRuntime} that
 * deserializes every engine of the process.
 *
 * <p>One shared runtime, because TensorRT requires a runtime to outlive the engines it deserialized,
 * and the bytedeco 10.6 bindings cannot delete TensorRT objects anyway (see {@link TrtEngine}).
 */
public final class TensorRt {

    private static volatile String unavailableReason;
    private static IRuntime runtime;

    private TensorRt() {}

    /**
     * True when the CUDA runtime, TensorRT and its ONNX parser all load and a GPU is visible. Never
     * throws; computed once per JVM.
     */
    public static boolean isAvailable() {
        return unavailableReason().isEmpty();
    }

    /** Why {@link #isAvailable()} is false, or "" when it is true. */
    public static String unavailableReason() {
        String reason = unavailableReason;
        if (reason == null) {
            synchronized (TensorRt.class) {
                reason = unavailableReason;
                if (reason == null) {
                    reason = probe();
                    unavailableReason = reason;
                }
            }
        }
        return reason;
    }

    private static String probe() {
        if (!Cuda.isAvailable()) {
            return Cuda.unavailableReason();
        }
        try {
            Loader.load(nvinfer.class);
            Loader.load(nvonnxparser.class);
            nvinfer.getInferLibVersion();
            return "";
        } catch (UnsatisfiedLinkError | NoClassDefFoundError | ExceptionInInitializerError e) {
            return "the TensorRT libraries could not be loaded (libnvinfer.so.10, libnvonnxparser.so.10 on"
                    + " LD_LIBRARY_PATH?): " + Cuda.withCauses(e);
        } catch (RuntimeException e) {
            return "probing TensorRT failed: " + e;
        }
    }

    /** Throws an IllegalStateException with the reason when TensorRT cannot be used here. */
    public static void requireAvailable() {
        if (!isAvailable()) {
            throw new IllegalStateException("TensorRT is not usable on this machine: " + unavailableReason());
        }
    }

    /**
     * The version of the loaded libnvinfer as "major.minor.patch.build", e.g. "10.6.0.26". Engines are
     * only valid for the exact version that built them.
     */
    public static String version() {
        requireAvailable();
        return nvinfer.getInferLibMajorVersion() + "." + nvinfer.getInferLibMinorVersion() + "."
                + nvinfer.getInferLibPatchVersion() + "." + nvinfer.getInferLibBuildVersion();
    }

    /** The process-wide TensorRT runtime, created on first use with the shared {@link TrtLogger}. */
    public static synchronized IRuntime runtime() {
        if (runtime == null) {
            requireAvailable();
            IRuntime created = createInferRuntime(TrtLogger.shared());
            if (created == null || created.isNull()) {
                throw new TrtException("createInferRuntime returned null", TrtLogger.shared().recentErrors());
            }
            runtime = created;
        }
        return runtime;
    }
}
