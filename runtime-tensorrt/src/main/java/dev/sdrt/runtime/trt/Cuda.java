package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaDeviceGetAttribute;
import static org.bytedeco.cuda.global.cudart.cudaDevAttrComputeCapabilityMajor;
import static org.bytedeco.cuda.global.cudart.cudaDevAttrComputeCapabilityMinor;
import static org.bytedeco.cuda.global.cudart.cudaDriverGetVersion;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaGetDevice;
import static org.bytedeco.cuda.global.cudart.cudaGetDeviceCount;
import static org.bytedeco.cuda.global.cudart.cudaGetDeviceProperties;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorName;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMemGetInfo;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaRuntimeGetVersion;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;

import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * Small helpers over the CUDA runtime (bytedeco {@code cudart}): error checking, device queries and
 * raw device allocation. Calls that synchronize the host with the device are NOT here: they live in
 * {@link SyncCounter} so that every one of them is counted.
 *
 * <p>Everything except {@link #isAvailable()} and {@link #unavailableReason()} assumes a usable GPU;
 * call {@code isAvailable()} first where there may be none (CPU-only machines, CI).
 */
public final class Cuda {

    /** Outcome of the one-time probe: null reason means available. */
    private static volatile Probe probe;

    private record Probe(boolean available, String reason) {}

    private Cuda() {}

    /**
     * Throws a {@link CudaException} naming {@code what} and CUDA's description of {@code status}
     * unless it is cudaSuccess.
     */
    public static void check(int status, String what) {
        if (status != cudaSuccess) {
            throw failure(status, what);
        }
    }

    /** The exception {@link #check} throws for {@code status}, for a failure that must join another. */
    static CudaException failure(int status, String what) {
        return new CudaException(status, what + " failed: " + errorName(status) + " (" + status + "): "
                + errorString(status));
    }

    private static String errorName(int status) {
        BytePointer name = cudaGetErrorName(status);
        return name == null || name.isNull() ? "cudaError" : name.getString();
    }

    private static String errorString(int status) {
        BytePointer text = cudaGetErrorString(status);
        return text == null || text.isNull() ? "unknown error" : text.getString();
    }

    /**
     * True when the CUDA runtime library loads and at least one GPU is visible. Never throws: a
     * missing native library, a missing driver or no device all give false (see {@link
     * #unavailableReason()}). The answer is computed once per JVM.
     */
    public static boolean isAvailable() {
        return probe().available();
    }

    /** Why {@link #isAvailable()} is false, or "" when it is true. */
    public static String unavailableReason() {
        return probe().reason();
    }

    private static Probe probe() {
        Probe result = probe;
        if (result == null) {
            synchronized (Cuda.class) {
                result = probe;
                if (result == null) {
                    result = runProbe();
                    probe = result;
                }
            }
        }
        return result;
    }

    private static Probe runProbe() {
        try {
            Loader.load(cudart.class);
            int[] count = {0};
            int status = cudaGetDeviceCount(count);
            if (status != cudaSuccess) {
                return new Probe(false, "cudaGetDeviceCount failed: " + errorName(status) + ": " + errorString(status));
            }
            if (count[0] < 1) {
                return new Probe(false, "no CUDA device is visible");
            }
            return new Probe(true, "");
        } catch (UnsatisfiedLinkError | NoClassDefFoundError | ExceptionInInitializerError e) {
            // The JNI library or libcudart itself is missing: a CPU-only machine.
            return new Probe(false, "the CUDA runtime library could not be loaded: " + withCauses(e));
        } catch (RuntimeException e) {
            return new Probe(false, "probing CUDA failed: " + e);
        }
    }

    /**
     * The error and its causes on one line. JavaCPP reports the last fallback it tried ("no jnicudart
     * in java.library.path"); the cause says what really failed (e.g. "libcudart.so.12: cannot open
     * shared object file").
     */
    static String withCauses(Throwable error) {
        StringBuilder text = new StringBuilder(error.toString());
        for (Throwable cause = error.getCause(); cause != null && cause != cause.getCause(); cause = cause.getCause()) {
            text.append(" <- ").append(cause);
        }
        return text.toString();
    }

    /** The current device's ordinal (0 unless the caller selected another). */
    public static int currentDevice() {
        int[] device = {0};
        check(cudaGetDevice(device), "cudaGetDevice");
        return device[0];
    }

    /** The current device's name as the driver reports it, e.g. "NVIDIA H100 80GB HBM3". */
    public static String deviceName() {
        try (cudaDeviceProp properties = new cudaDeviceProp()) {
            check(cudaGetDeviceProperties(properties, currentDevice()), "cudaGetDeviceProperties");
            return properties.name().getString().trim();
        }
    }

    /** The current device's compute capability as "major.minor", e.g. "9.0" for an H100. */
    public static String computeCapability() {
        int device = currentDevice();
        int[] major = {0};
        int[] minor = {0};
        check(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute(major)");
        check(cudaDeviceGetAttribute(minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute(minor)");
        return major[0] + "." + minor[0];
    }

    /** CUDA runtime version as "12.6". */
    public static String runtimeVersion() {
        int[] version = {0};
        check(cudaRuntimeGetVersion(version), "cudaRuntimeGetVersion");
        return formatVersion(version[0]);
    }

    /** Newest CUDA version the installed driver supports, as "13.0". */
    public static String driverVersion() {
        int[] version = {0};
        check(cudaDriverGetVersion(version), "cudaDriverGetVersion");
        return formatVersion(version[0]);
    }

    private static String formatVersion(int encoded) {
        return encoded / 1000 + "." + (encoded % 1000) / 10;
    }

    /** Free and total device memory in bytes, {@code [free, total]}. */
    public static long[] memoryInfo() {
        try (SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
            check(cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new long[] {free.get(), total.get()};
        }
    }

    /** cudaMalloc: device memory of {@code bytes} (at least 256-byte aligned). Prefer {@link DeviceBuffer}. */
    public static Pointer malloc(long bytes, String what) {
        Pointer pointer = new Pointer();
        check(cudaMalloc(pointer, Math.max(bytes, 1)), "cudaMalloc(" + bytes + " bytes for " + what + ")");
        return pointer;
    }

    /** Queues a copy of {@code bytes} from pinned host memory to device address {@code target}. */
    public static void copyToDeviceAsync(Pointer target, PinnedBuffer source, long bytes, CudaStream stream, String what) {
        if (bytes > source.byteSize()) {
            throw new IllegalArgumentException("copy of " + bytes + " bytes from " + source + " for " + what);
        }
        check(cudaMemcpyAsync(target, source.pointer(), bytes, cudaMemcpyHostToDevice, stream.handle()),
                "cudaMemcpyAsync(host to " + what + ")");
    }

    /** Queues a copy of {@code bytes} from device address {@code source} into pinned host memory. */
    public static void copyToHostAsync(PinnedBuffer target, Pointer source, long bytes, CudaStream stream, String what) {
        if (bytes > target.byteSize()) {
            throw new IllegalArgumentException("copy of " + bytes + " bytes into " + target + " for " + what);
        }
        check(cudaMemcpyAsync(target.pointer(), source, bytes, cudaMemcpyDeviceToHost, stream.handle()),
                "cudaMemcpyAsync(" + what + " to host)");
    }

    /** cudaFree; a null pointer is ignored. */
    public static void free(Pointer pointer, String what) {
        if (pointer != null && !pointer.isNull()) {
            check(cudaFree(pointer), "cudaFree(" + what + ")");
        }
    }
}
