package dev.sdrt.runtime.ort;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.TensorInfo.OnnxTensorType;
import ai.onnxruntime.ValueInfo;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs an ONNX model on the CPU with ONNX Runtime, taking and returning {@link Tensor}s.
 *
 * <p>Inputs are checked against the model before ONNX Runtime sees them, so that a wrong name,
 * dtype or shape fails with a {@link ModelInputException} that lists what the model expects rather
 * than with an error from deep inside a kernel. Outputs are copied out of ONNX Runtime's memory, so
 * they stay valid after the call and after {@link #close()}.
 *
 * <p>{@link #run} may be called from several threads at once, as ONNX Runtime sessions allow.
 */
public final class OrtRunner implements AutoCloseable {

    private final Path model;
    private final OrtEnvironment environment;
    private final OrtSession session;
    private final Map<String, TensorSpec> inputs;
    private final Map<String, TensorSpec> outputs;
    private volatile boolean closed;

    private OrtRunner(Path model, OrtEnvironment environment, OrtSession session,
            Map<String, TensorSpec> inputs, Map<String, TensorSpec> outputs) {
        this.model = model;
        this.environment = environment;
        this.session = session;
        this.inputs = inputs;
        this.outputs = outputs;
    }

    /** Starts configuring a runner for the {@code .onnx} file at {@code model}. */
    public static Builder builder(Path model) {
        return new Builder(model);
    }

    public Path model() {
        return model;
    }

    /** The model's inputs by name, in the model's order. */
    public Map<String, TensorSpec> inputs() {
        return inputs;
    }

    /** The model's outputs by name, in the model's order. */
    public Map<String, TensorSpec> outputs() {
        return outputs;
    }

    /**
     * Runs the model once.
     *
     * @param feeds one tensor per model input, by input name
     * @return every output, by name, in the model's order
     * @throws ModelInputException when the feeds do not fit the model's inputs
     * @throws IllegalStateException when ONNX Runtime fails while running, or the runner is closed
     */
    public Map<String, Tensor> run(Map<String, Tensor> feeds) {
        if (closed) {
            throw new IllegalStateException("the runner for " + model + " is closed");
        }
        checkFeeds(feeds);
        Map<String, OnnxTensor> ortFeeds = new LinkedHashMap<>();
        try {
            for (String name : inputs.keySet()) {
                ortFeeds.put(name, toOnnxTensor(feeds.get(name)));
            }
            try (OrtSession.Result result = session.run(ortFeeds)) {
                Map<String, Tensor> results = new LinkedHashMap<>();
                for (String name : outputs.keySet()) {
                    OnnxValue value = result.get(name).orElseThrow(() -> new IllegalStateException(
                            "ONNX Runtime returned no value for output '" + name + "' of " + model));
                    results.put(name, toTensor(name, (OnnxTensor) value));
                }
                return Collections.unmodifiableMap(results);
            }
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed running " + model + ": " + e.getMessage(), e);
        } finally {
            OnnxValue.close(ortFeeds);
        }
    }

    private void checkFeeds(Map<String, Tensor> feeds) {
        List<String> problems = new ArrayList<>();
        for (TensorSpec input : inputs.values()) {
            Tensor feed = feeds.get(input.name());
            if (feed == null) {
                problems.add("missing input '" + input.name() + "' (" + input.describe() + ")");
            } else {
                input.mismatch(feed).ifPresent(problems::add);
            }
        }
        for (String name : feeds.keySet()) {
            if (!inputs.containsKey(name)) {
                problems.add("unknown input '" + name + "'; the model's inputs are " + inputs.keySet());
            }
        }
        if (!problems.isEmpty()) {
            throw new ModelInputException(model, problems, inputs.values());
        }
    }

    private OnnxTensor toOnnxTensor(Tensor tensor) throws OrtException {
        // The tensor's buffer is direct and little-endian (native order on every host ONNX Runtime
        // supports), so ONNX Runtime reads it in place instead of copying.
        return OnnxTensor.createTensor(environment, tensor.buffer(), tensor.shape(), javaType(tensor.dtype()));
    }

    private static OnnxJavaType javaType(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> OnnxJavaType.FLOAT;
            case FLOAT16 -> OnnxJavaType.FLOAT16;
            case BFLOAT16 -> OnnxJavaType.BFLOAT16;
            case FLOAT64 -> OnnxJavaType.DOUBLE;
            case INT64 -> OnnxJavaType.INT64;
            case INT32 -> OnnxJavaType.INT32;
            case INT8 -> OnnxJavaType.INT8;
            case UINT8 -> OnnxJavaType.UINT8;
            case BOOL -> OnnxJavaType.BOOL;
        };
    }

    private Tensor toTensor(String name, OnnxTensor value) {
        // The element type was checked when the model loaded; the shape is only known now, since
        // dynamic dimensions take their sizes from the inputs. getByteBuffer copies out of ONNX
        // Runtime's memory, and copyOf once more into a direct buffer.
        return Tensor.copyOf(outputs.get(name).dtype(), value.getInfo().getShape(), value.getByteBuffer());
    }

    /** The DType for an ONNX element type, or null when sdrt has none. */
    private static DType dtypeOf(OnnxTensorType onnxType) {
        return switch (onnxType) {
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT -> DType.FLOAT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 -> DType.FLOAT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 -> DType.BFLOAT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE -> DType.FLOAT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 -> DType.INT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 -> DType.INT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 -> DType.INT8;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 -> DType.UINT8;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL -> DType.BOOL;
            default -> null;
        };
    }

    /**
     * Ends the profiling {@link Builder#profileTo} started and returns the trace file it wrote (a
     * Chrome trace: one event per node per run).
     */
    public Path endProfiling() {
        try {
            return Path.of(session.endProfiling());
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not end profiling for " + model + ": " + e.getMessage(), e);
        }
    }

    /** Releases the ONNX Runtime session; outputs already returned stay valid. Closing twice is harmless. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed closing the session for " + model, e);
        }
    }

    @Override
    public String toString() {
        return "OrtRunner(" + model + ")";
    }

    /** Session settings; every one has a default, so {@code OrtRunner.builder(path).build()} works. */
    public static final class Builder {
        private final Path model;
        private int intraOpThreads = Runtime.getRuntime().availableProcessors();
        private int interOpThreads = 1;
        private OrtOptLevel optimizationLevel = OrtOptLevel.ALL;
        private Path profilePrefix;

        private Builder(Path model) {
            this.model = model;
        }

        /**
         * Threads that share the work inside one operator (a matmul, a convolution). Defaults to the
         * number of available processors.
         */
        public Builder intraOpThreads(int threads) {
            this.intraOpThreads = checkThreads(threads, "intraOpThreads");
            return this;
        }

        /**
         * Threads that run independent branches of the graph at the same time. Defaults to 1, which
         * runs operators one after another (ONNX Runtime's sequential mode): diffusion graphs are
         * mostly one long chain and the intra-op threads already use every core. More than 1 switches
         * ONNX Runtime to its parallel execution mode.
         */
        public Builder interOpThreads(int threads) {
            this.interOpThreads = checkThreads(threads, "interOpThreads");
            return this;
        }

        /** How much ONNX Runtime rewrites the graph at load time; defaults to {@link OrtOptLevel#ALL}. */
        public Builder optimizationLevel(OrtOptLevel level) {
            this.optimizationLevel = level;
            return this;
        }

        /**
         * Records every node's time in every run to a trace file {@code PREFIX_<date>.json} (ONNX
         * Runtime's profiler), which {@link OrtRunner#endProfiling()} closes; see {@link OrtProfile}.
         */
        public Builder profileTo(Path prefix) {
            this.profilePrefix = prefix;
            return this;
        }

        private static int checkThreads(int threads, String setting) {
            if (threads < 1) {
                throw new IllegalArgumentException(setting + " must be at least 1, got " + threads);
            }
            return threads;
        }

        /**
         * Loads the model.
         *
         * @throws ModelLoadException when the file is missing, is not a valid ONNX model, or has an
         *     input or output that is not a tensor of a {@link DType}
         */
        public OrtRunner build() {
            if (!Files.isRegularFile(model)) {
                throw new ModelLoadException(model,
                        Files.exists(model) ? "not a regular file" : "file not found", null);
            }
            OrtEnvironment environment = OrtNativeLibraries.environment();
            OrtSession session;
            try (SessionOptions options = new SessionOptions()) {
                options.setIntraOpNumThreads(intraOpThreads);
                options.setInterOpNumThreads(interOpThreads);
                options.setExecutionMode(interOpThreads > 1 ? ExecutionMode.PARALLEL : ExecutionMode.SEQUENTIAL);
                options.setOptimizationLevel(optimizationLevel.ortLevel());
                // ONNX Runtime's warnings (e.g. "Could not find a CPU kernel and hence can't constant fold" on
                // every fp16 Where) say nothing a user can act on; errors still come back as exceptions.
                options.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
                if (profilePrefix != null) {
                    options.enableProfiling(profilePrefix.toString());
                }
                session = environment.createSession(model.toString(), options);
            } catch (OrtException e) {
                throw new ModelLoadException(model, e.getMessage(), e);
            }
            try {
                return new OrtRunner(model, environment, session,
                        specs(session.getInputInfo(), "input"), specs(session.getOutputInfo(), "output"));
            } catch (OrtException | ModelLoadException e) {
                try {
                    session.close();
                } catch (OrtException closeFailure) {
                    e.addSuppressed(closeFailure);
                }
                throw e instanceof ModelLoadException loadFailure
                        ? loadFailure
                        : new ModelLoadException(model, e.getMessage(), e);
            }
        }

        private Map<String, TensorSpec> specs(Map<String, NodeInfo> nodes, String kind) {
            Map<String, TensorSpec> specs = new LinkedHashMap<>();
            for (NodeInfo node : nodes.values()) {
                ValueInfo info = node.getInfo();
                if (!(info instanceof TensorInfo tensorInfo)) {
                    throw new ModelLoadException(model, kind + " '" + node.getName() + "' is " + info
                            + "; only tensor inputs and outputs are supported", null);
                }
                DType dtype = dtypeOf(tensorInfo.onnxType);
                if (dtype == null) {
                    throw new ModelLoadException(model, kind + " '" + node.getName() + "' has element type "
                            + tensorInfo.onnxType + ", which sdrt does not support; supported: "
                            + Arrays.toString(DType.values()), null);
                }
                specs.put(node.getName(), new TensorSpec(node.getName(), dtype, tensorInfo.getShape(),
                        Arrays.asList(tensorInfo.getDimensionNames())));
            }
            return Collections.unmodifiableMap(specs);
        }
    }
}
