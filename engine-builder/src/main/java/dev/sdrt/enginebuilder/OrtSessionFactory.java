package dev.sdrt.enginebuilder;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import ai.onnxruntime.providers.OrtCUDAProviderOptions;
import ai.onnxruntime.providers.OrtTensorRTProviderOptions;
import dev.sdrt.runtime.ort.ModelLoadException;
import dev.sdrt.runtime.ort.OrtNativeLibraries;
import dev.sdrt.runtime.ort.OrtOptLevel;
import dev.sdrt.runtime.ort.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Objects;

/**
 * ONNX Runtime sessions with sdrt's settings: on the CPU (threads, graph optimization level), or on
 * the GPU through the CUDA or TensorRT execution providers.
 *
 * <p>The GPU providers exist only in the {@code onnxruntime_gpu} artifact, which the Maven profile
 * {@code ort-gpu} selects. With the default CPU artifact, asking for them fails with a message that
 * says so, instead of ONNX Runtime's terse error.
 *
 * <p>CPU sessions are made by the runtime's {@link OrtRunner} (which also checks feeds and converts
 * tensors); {@link #open} gives a raw {@link OrtSession} for any provider, because the runner's builder
 * has no way to add execution providers.
 */
public final class OrtSessionFactory {

    /** Where ONNX Runtime runs the graph. */
    public enum Provider {
        CPU, CUDA, TENSORRT
    }

    /**
     * Session settings.
     *
     * @param provider          where to run
     * @param intraOpThreads    threads inside one operator (CPU)
     * @param interOpThreads    threads across independent branches (CPU); more than 1 selects parallel mode
     * @param optLevel          ONNX Runtime graph optimization level
     * @param deviceId          CUDA device for the GPU providers
     * @param tensorRtFp16      let the TensorRT provider run float32 layers in float16
     * @param tensorRtCacheDir  where the TensorRT provider keeps its engines between runs (null: no cache)
     */
    public record Config(Provider provider, int intraOpThreads, int interOpThreads, OrtOptLevel optLevel, int deviceId,
            boolean tensorRtFp16, Path tensorRtCacheDir) {

        public Config {
            Objects.requireNonNull(provider, "provider");
            Objects.requireNonNull(optLevel, "optLevel");
            if (intraOpThreads < 1 || interOpThreads < 1) {
                throw new IllegalArgumentException("thread counts must be at least 1, got intra-op " + intraOpThreads
                        + ", inter-op " + interOpThreads);
            }
        }

        /** CPU with every available processor, sequential mode, all optimizations. */
        public static Config cpu() {
            return new Config(Provider.CPU, Runtime.getRuntime().availableProcessors(), 1, OrtOptLevel.ALL, 0, false, null);
        }

        public static Config cuda(int deviceId) {
            return new Config(Provider.CUDA, Runtime.getRuntime().availableProcessors(), 1, OrtOptLevel.ALL, deviceId,
                    false, null);
        }

        public static Config tensorRt(int deviceId, boolean fp16, Path cacheDir) {
            return new Config(Provider.TENSORRT, Runtime.getRuntime().availableProcessors(), 1, OrtOptLevel.ALL,
                    deviceId, fp16, cacheDir);
        }

        public Config withThreads(int intraOp, int interOp) {
            return new Config(provider, intraOp, interOp, optLevel, deviceId, tensorRtFp16, tensorRtCacheDir);
        }

        public Config withOptLevel(OrtOptLevel level) {
            return new Config(provider, intraOpThreads, interOpThreads, level, deviceId, tensorRtFp16, tensorRtCacheDir);
        }
    }

    private OrtSessionFactory() {}

    /** A CPU runner for {@code model} with {@code config}'s threads and optimization level. */
    public static OrtRunner cpuRunner(Path model, Config config) {
        if (config.provider() != Provider.CPU) {
            throw new IllegalArgumentException("cpuRunner runs on the CPU; use open() for " + config.provider());
        }
        return OrtRunner.builder(model)
                .intraOpThreads(config.intraOpThreads())
                .interOpThreads(config.interOpThreads())
                .optimizationLevel(config.optLevel())
                .build();
    }

    /** True when the ONNX Runtime on the classpath was built with {@code provider}. */
    public static boolean isAvailable(Provider provider) {
        return provider == Provider.CPU || OrtEnvironment.getAvailableProviders().contains(ortProvider(provider));
    }

    /**
     * A session for {@code model} on {@code config}'s provider. The caller closes it.
     *
     * @throws OrtProviderUnavailableException when the provider is not in this ONNX Runtime build
     * @throws ModelLoadException when ONNX Runtime cannot load the model
     */
    public static OrtSession open(Path model, Config config) {
        if (!Files.isRegularFile(model)) {
            throw new ModelLoadException(model, Files.exists(model) ? "not a regular file" : "file not found", null);
        }
        try (SessionOptions options = sessionOptions(config)) {
            return OrtNativeLibraries.environment().createSession(model.toString(), options);
        } catch (OrtException e) {
            throw new ModelLoadException(model, e.getMessage(), e);
        }
    }

    /** Session options for {@code config}; the caller closes them. */
    public static SessionOptions sessionOptions(Config config) {
        SessionOptions options = new SessionOptions();
        try {
            options.setIntraOpNumThreads(config.intraOpThreads());
            options.setInterOpNumThreads(config.interOpThreads());
            options.setExecutionMode(config.interOpThreads() > 1 ? ExecutionMode.PARALLEL : ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(optLevel(config.optLevel()));
        } catch (OrtException e) {
            options.close();
            throw new IllegalStateException("ONNX Runtime rejected the session settings " + config + ": " + e.getMessage(), e);
        }
        try {
            switch (config.provider()) {
                case CPU -> { }
                case CUDA -> addCuda(options, config);
                case TENSORRT -> {
                    addTensorRt(options, config);
                    // Nodes the TensorRT provider cannot take fall back to CUDA, then CPU.
                    addCuda(options, config);
                }
            }
        } catch (RuntimeException e) {
            options.close();
            throw e;
        }
        return options;
    }

    private static void addCuda(SessionOptions options, Config config) {
        requireProvider(Provider.CUDA, null);
        try (OrtCUDAProviderOptions cuda = new OrtCUDAProviderOptions(config.deviceId())) {
            options.addCUDA(cuda);
        } catch (OrtException | UnsatisfiedLinkError e) {
            requireProvider(Provider.CUDA, e);
        }
    }

    private static void addTensorRt(SessionOptions options, Config config) {
        requireProvider(Provider.TENSORRT, null);
        try (OrtTensorRTProviderOptions trt = new OrtTensorRTProviderOptions(config.deviceId())) {
            if (config.tensorRtFp16()) {
                trt.add("trt_fp16_enable", "1");
            }
            if (config.tensorRtCacheDir() != null) {
                trt.add("trt_engine_cache_enable", "1");
                trt.add("trt_engine_cache_path", config.tensorRtCacheDir().toString());
            }
            options.addTensorrt(trt);
        } catch (OrtException | UnsatisfiedLinkError e) {
            requireProvider(Provider.TENSORRT, e);
        }
    }

    /**
     * Throws the explanatory exception when {@code provider} is missing from this build, or when
     * adding it failed ({@code failure} not null).
     */
    private static void requireProvider(Provider provider, Throwable failure) {
        EnumSet<OrtProvider> available = OrtEnvironment.getAvailableProviders();
        boolean built = available.contains(ortProvider(provider));
        if (built && failure == null) {
            return;
        }
        String needs = provider == Provider.TENSORRT ? "CUDA 12, cuDNN 9 and TensorRT 10" : "CUDA 12 and cuDNN 9";
        String reason = !built
                ? "the ONNX Runtime on the classpath was built without it (it offers " + available + "):"
                        + " sdrt uses the CPU artifact com.microsoft.onnxruntime:onnxruntime unless built with the"
                        + " Maven profile -Port-gpu, which selects onnxruntime_gpu"
                : "ONNX Runtime could not start it; it needs " + needs + " libraries on the library path and a GPU";
        throw new OrtProviderUnavailableException("ONNX Runtime's " + provider + " execution provider is not"
                + " available: " + reason + (failure == null ? "" : " (ONNX Runtime said: " + failure.getMessage() + ")"),
                failure);
    }

    private static OrtProvider ortProvider(Provider provider) {
        return switch (provider) {
            case CPU -> OrtProvider.CPU;
            case CUDA -> OrtProvider.CUDA;
            case TENSORRT -> OrtProvider.TENSOR_RT;
        };
    }

    /** The runtime's level enum keeps ONNX Runtime's value package-private, so it is mapped here. */
    private static OptLevel optLevel(OrtOptLevel level) {
        return switch (level) {
            case NONE -> OptLevel.NO_OPT;
            case BASIC -> OptLevel.BASIC_OPT;
            case EXTENDED -> OptLevel.EXTENDED_OPT;
            case ALL -> OptLevel.ALL_OPT;
        };
    }
}
