package dev.sdrt.runtime.trt;

import static org.bytedeco.tensorrt.global.nvinfer.ExecutionContextAllocationStrategy.kUSER_MANAGED;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.tensorrt.global.nvinfer.OptProfileSelector;
import org.bytedeco.tensorrt.global.nvinfer.TensorIOMode;
import org.bytedeco.tensorrt.nvinfer.ICudaEngine;
import org.bytedeco.tensorrt.nvinfer.IExecutionContext;

/**
 * A deserialized TensorRT engine (a {@code .plan} file): its I/O tensors, optimization profiles and
 * activation memory size, and the factory for {@link TrtExecutionContext}s that run it.
 *
 * <p>Activation memory is user-managed: each context either gets its own {@link DeviceBuffer}
 * ({@link #createContext()}) or uses one the caller shares between the engines of a pipeline ({@link
 * #createContext(DeviceBuffer)}), which run one after another on one stream and so never need their
 * activations at the same time.
 *
 * <p>Known limit of the bytedeco 10.6 bindings (javacpp-presets issue 1699): TensorRT objects
 * returned by TensorRT functions carry no deallocator and TensorRT 10 removed {@code destroy()}, so
 * Java cannot delete the native engine; its weights stay on the GPU until the process exits.
 * {@link #close()} releases everything sdrt allocated itself (activation and I/O buffers of contexts,
 * staging memory), which is why activation memory is user-managed here.
 */
public final class TrtEngine implements AutoCloseable {

    /** Engines of {@link #loadShared}, by plan file, size and modification time. */
    private static final Map<String, TrtEngine> SHARED = new HashMap<>();

    private final String source;
    private final ICudaEngine engine;
    private final List<TrtTensorInfo> tensors;
    private boolean closed;
    /** Loaded by {@link #loadShared}: other users may hold it, so {@link #close()} leaves it open. */
    private boolean shared;

    private TrtEngine(String source, ICudaEngine engine) {
        this.source = source;
        this.engine = engine;
        this.tensors = Collections.unmodifiableList(readTensors(engine));
    }

    /** Reads and deserializes a plan file with the shared runtime. */
    public static TrtEngine load(Path plan) throws IOException {
        TensorRt.requireAvailable();
        long size = Files.size(plan);
        try (BytePointer bytes = new BytePointer(size)) {
            NativeMemoryFiles.read(plan, bytes, size);
            return deserialize(bytes, size, plan.toString());
        }
    }

    /**
     * The engine of {@code plan}, deserialized once per process and then handed out again while the
     * file is unchanged. The native engine cannot be freed (class comment), so loading a plan a second
     * time, as a benchmark that reopens its pipeline per size does, would only hold its weights on the
     * device twice. Contexts stay per caller; {@link #close()} on a shared engine does nothing.
     */
    public static TrtEngine loadShared(Path plan) throws IOException {
        String key = plan.toRealPath() + "|" + Files.size(plan) + "|" + Files.getLastModifiedTime(plan).toMillis();
        synchronized (SHARED) {
            TrtEngine engine = SHARED.get(key);
            if (engine == null) {
                engine = load(plan);
                engine.shared = true;
                SHARED.put(key, engine);
            }
            return engine;
        }
    }

    /** Deserializes a plan held in native memory; {@code source} names it in messages. */
    public static TrtEngine deserialize(BytePointer plan, long size, String source) {
        TensorRt.requireAvailable();
        TrtLogger.shared().clearRecentErrors();
        ICudaEngine engine = TensorRt.runtime().deserializeCudaEngine(plan, size);
        if (engine == null || engine.isNull()) {
            throw new TrtException("TensorRT could not deserialize the engine " + source
                    + " (built by another TensorRT version or for another GPU, or not a plan file)",
                    TrtLogger.shared().recentErrors());
        }
        return new TrtEngine(source, engine);
    }

    private static List<TrtTensorInfo> readTensors(ICudaEngine engine) {
        List<TrtTensorInfo> list = new ArrayList<>();
        for (int i = 0; i < engine.getNbIOTensors(); i++) {
            String name = engine.getIOTensorName(i);
            boolean input = engine.getTensorIOMode(name).intern() == TensorIOMode.kINPUT;
            var type = engine.getTensorDataType(name);
            list.add(new TrtTensorInfo(name, input, TrtDataTypes.toDType(type), TrtDataTypes.name(type),
                    TrtDims.toArray(engine.getTensorShape(name), name)));
        }
        return list;
    }

    /** Where the engine came from (its file, usually). */
    public String source() {
        return source;
    }

    /** Every I/O tensor, in the engine's order. */
    public List<TrtTensorInfo> tensors() {
        return tensors;
    }

    public List<TrtTensorInfo> inputs() {
        return tensors.stream().filter(TrtTensorInfo::input).toList();
    }

    public List<TrtTensorInfo> outputs() {
        return tensors.stream().filter(t -> !t.input()).toList();
    }

    /** The I/O tensor called {@code name}; the error lists the engine's tensors. */
    public TrtTensorInfo tensor(String name) {
        for (TrtTensorInfo tensor : tensors) {
            if (tensor.name().equals(name)) {
                return tensor;
            }
        }
        throw new IllegalArgumentException("engine " + source + " has no I/O tensor '" + name + "'; it has " + tensors);
    }

    /**
     * Activation memory one execution context needs, in bytes (getDeviceMemorySizeV2: the largest over
     * all profiles). A buffer of this size can be shared by contexts that never run at the same time.
     */
    public long deviceMemorySize() {
        return handle().getDeviceMemorySizeV2();
    }

    /** The activation memory that the engines of one pipeline can share: the largest of them. */
    public static long sharedDeviceMemorySize(Collection<TrtEngine> engines) {
        return engines.stream().mapToLong(TrtEngine::deviceMemorySize).max().orElse(0);
    }

    public int profileCount() {
        return handle().getNbOptimizationProfiles();
    }

    /** {min, opt, max} shapes of input {@code name} in optimization profile {@code profile}. */
    public long[][] profileShapes(String name, int profile) {
        tensor(name);
        ICudaEngine e = handle();
        return new long[][] {
            TrtDims.toArray(e.getProfileShape(name, profile, OptProfileSelector.kMIN), name + " min"),
            TrtDims.toArray(e.getProfileShape(name, profile, OptProfileSelector.kOPT), name + " opt"),
            TrtDims.toArray(e.getProfileShape(name, profile, OptProfileSelector.kMAX), name + " max"),
        };
    }

    /** True when the engine was built refittable. */
    public boolean isRefittable() {
        return handle().isRefittable();
    }

    /** A context with its own activation memory, freed when the context closes. */
    public TrtExecutionContext createContext() {
        DeviceBuffer activations = DeviceBuffer.allocate(deviceMemorySize(), "activations of " + source);
        try {
            return new TrtExecutionContext(this, newUserManagedContext(activations), activations);
        } catch (RuntimeException e) {
            activations.close();
            throw e;
        }
    }

    /**
     * A context that uses {@code sharedActivations} (at least {@link #deviceMemorySize()} bytes) as its
     * activation memory. The caller keeps ownership and must not run two contexts sharing it at once.
     */
    public TrtExecutionContext createContext(DeviceBuffer sharedActivations) {
        return new TrtExecutionContext(this, newUserManagedContext(sharedActivations), null);
    }

    private IExecutionContext newUserManagedContext(DeviceBuffer activations) {
        long needed = deviceMemorySize();
        if (activations.byteSize() < needed) {
            throw new IllegalArgumentException("engine " + source + " needs " + needed
                    + " bytes of activation memory; " + activations + " is too small");
        }
        TrtLogger.shared().clearRecentErrors();
        IExecutionContext context = handle().createExecutionContext(kUSER_MANAGED);
        if (context == null || context.isNull()) {
            throw new TrtException("TensorRT could not create an execution context for " + source,
                    TrtLogger.shared().recentErrors());
        }
        context.setDeviceMemoryV2(activations.pointer(), activations.byteSize());
        return context;
    }

    /** The native engine, for code in this package and the engine builder's inspection. */
    public ICudaEngine handle() {
        if (closed) {
            throw new IllegalStateException("engine " + source + " is closed");
        }
        return engine;
    }

    /**
     * Marks the engine closed, unless it is {@linkplain #loadShared shared}. The native engine itself
     * cannot be freed from Java (see the class comment); close its contexts first, they own the memory
     * sdrt allocated.
     */
    @Override
    public synchronized void close() {
        if (!shared) {
            closed = true;
        }
    }

    @Override
    public String toString() {
        return "TrtEngine(" + source + ")";
    }
}
