package dev.sdrt.runtime.trt;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.tensorrt.nvinfer.IExecutionContext;

/**
 * Runs one {@link TrtEngine}: input shapes, device addresses of every I/O tensor, enqueue on a
 * caller's stream, and capture of one enqueue as a {@link CudaGraph}.
 *
 * <p>Each I/O tensor is either bound to a caller's device memory ({@link #bind}) or to a buffer this
 * context allocates and owns ({@link #allocate}). Host data moves through pinned staging buffers, so
 * uploads and read-backs are queued on the stream like everything else; {@link #run} is the simple
 * whole-call path and makes exactly one counted synchronization.
 *
 * <p>Not thread-safe: use one context per thread (TensorRT's rule for execution contexts).
 */
public final class TrtExecutionContext implements AutoCloseable {

    private final TrtEngine engine;
    private final IExecutionContext context;
    private final DeviceBuffer ownedActivations;
    private final Map<String, DeviceBuffer> ownedBuffers = new HashMap<>();
    /** Every bound tensor's device address and the bytes available there, owned or not. */
    private final Map<String, Binding> bindings = new HashMap<>();
    private final Map<String, PinnedBuffer> staging = new HashMap<>();
    /** True once every tensor was found bound and large enough; reset by anything that changes that. */
    private boolean ready;
    private boolean closed;

    private record Binding(Pointer address, long bytes) {}

    TrtExecutionContext(TrtEngine engine, IExecutionContext context, DeviceBuffer ownedActivations) {
        this.engine = engine;
        this.context = context;
        this.ownedActivations = ownedActivations;
    }

    public TrtEngine engine() {
        return engine;
    }

    /**
     * Sets the run-time shape of a dynamic input. Fails, naming the allowed range, when the shape is
     * outside the engine's optimization profile.
     */
    public void setInputShape(String name, long... shape) {
        TrtTensorInfo info = engine.tensor(name);
        if (!info.input()) {
            throw new IllegalArgumentException("'" + name + "' is an output of " + engine.source() + "; only inputs take shapes");
        }
        ready = false;
        if (!handle().setInputShape(name, TrtDims.of(shape))) {
            StringBuilder ranges = new StringBuilder();
            for (int p = 0; p < engine.profileCount(); p++) {
                long[][] range = engine.profileShapes(name, p);
                ranges.append(String.format(" profile %d: min %s opt %s max %s;", p,
                        Arrays.toString(range[0]), Arrays.toString(range[1]), Arrays.toString(range[2])));
            }
            throw new TrtException("shape " + Arrays.toString(shape) + " is not allowed for input '" + name
                    + "' of " + engine.source() + " (declared " + Arrays.toString(info.shape()) + ";" + ranges + ")",
                    TrtLogger.shared().recentErrors());
        }
    }

    /** The tensor's shape for the input shapes set so far; -1 where it is not yet known. */
    public long[] shape(String name) {
        engine.tensor(name);
        return TrtDims.toArray(handle().getTensorShape(name), name);
    }

    /** Bytes the tensor occupies at its current shape. */
    public long byteSize(String name) {
        TrtTensorInfo info = engine.tensor(name);
        long[] shape = shape(name);
        for (long dim : shape) {
            if (dim < 0) {
                throw new IllegalStateException("the shape of '" + name + "' is " + Arrays.toString(shape)
                        + ": set the input shapes first (setInputShape)");
            }
        }
        return Tensor.numElements(shape) * dtypeOf(info).byteSize();
    }

    private static DType dtypeOf(TrtTensorInfo info) {
        if (info.dtype() == null) {
            throw new IllegalStateException("tensor '" + info.name() + "' is " + info.typeName()
                    + ", which sdrt tensors cannot hold");
        }
        return info.dtype();
    }

    /** Binds a tensor to caller-owned device memory of {@code byteSize} bytes (checked against the current shape). */
    public void bind(String name, Pointer devicePointer, long byteSize) {
        engine.tensor(name);
        Binding current = bindings.get(name);
        if (current != null && current.address().address() == devicePointer.address() && current.bytes() == byteSize
                && !ownedBuffers.containsKey(name)) {
            return; // bound so already: a loop that launches a context with the same tensors skips the JNI calls and checks
        }
        if (!handle().setTensorAddress(name, devicePointer)) {
            throw new TrtException("TensorRT refused the address for '" + name + "' of " + engine.source(),
                    TrtLogger.shared().recentErrors());
        }
        bindings.put(name, new Binding(devicePointer, byteSize));
        ready = false;
        DeviceBuffer previous = ownedBuffers.remove(name);
        if (previous != null) {
            previous.close();
        }
    }

    /** Binds a tensor to a caller-owned buffer; the caller keeps ownership. */
    public void bind(String name, DeviceBuffer buffer) {
        bind(name, buffer.pointer(), buffer.byteSize());
    }

    /**
     * Allocates (or reuses, when large enough) a buffer owned by this context for the tensor at its
     * current shape, and binds it.
     */
    public DeviceBuffer allocate(String name) {
        long needed = byteSize(name);
        DeviceBuffer buffer = ownedBuffers.get(name);
        if (buffer == null || buffer.byteSize() < needed) {
            if (buffer != null) {
                buffer.close();
            }
            buffer = DeviceBuffer.allocate(needed, "'" + name + "' of " + engine.source());
            ownedBuffers.put(name, buffer);
        }
        if (!handle().setTensorAddress(name, buffer.pointer())) {
            throw new TrtException("TensorRT refused the address for '" + name + "'", TrtLogger.shared().recentErrors());
        }
        bindings.put(name, new Binding(buffer.pointer(), buffer.byteSize()));
        ready = false;
        return buffer;
    }

    /**
     * Makes every I/O tensor that is not bound to the caller's memory have an owned buffer large
     * enough for the current shapes (input shapes must be set): allocates missing ones, grows small ones.
     */
    public void ensureBuffers() {
        for (TrtTensorInfo tensor : engine.tensors()) {
            String name = tensor.name();
            boolean callerBound = bindings.containsKey(name) && !ownedBuffers.containsKey(name);
            if (callerBound) {
                continue;
            }
            DeviceBuffer owned = ownedBuffers.get(name);
            if (owned == null || owned.byteSize() < byteSize(name)) {
                allocate(name);
            }
        }
    }

    /**
     * The buffer this context owns for {@code name}, allocating it if the tensor is not bound yet.
     * Fails for a tensor bound to the caller's memory (the caller has that buffer).
     */
    public DeviceBuffer buffer(String name) {
        DeviceBuffer buffer = ownedBuffers.get(name);
        if (buffer != null) {
            return buffer;
        }
        if (bindings.containsKey(name)) {
            throw new IllegalStateException("'" + name + "' is bound to the caller's memory, not to a buffer of this context");
        }
        return allocate(name);
    }

    /** The device address bound to {@code name}, allocating an owned buffer if none is bound. */
    private Binding binding(String name) {
        Binding binding = bindings.get(name);
        if (binding == null) {
            allocate(name);
            binding = bindings.get(name);
        }
        return binding;
    }

    /** Queues one inference on {@code stream} (enqueueV3). All shapes and addresses must be set. */
    public void enqueue(CudaStream stream) {
        checkReady();
        if (!handle().enqueueV3(stream.handle())) {
            throw new TrtException("enqueueV3 failed for " + engine.source(), TrtLogger.shared().recentErrors());
        }
    }

    /** Checks bindings once per change rather than per enqueue: enqueue sits in the per-step hot path. */
    private void checkReady() {
        if (ready) {
            return;
        }
        List<String> problems = new ArrayList<>();
        for (TrtTensorInfo tensor : engine.tensors()) {
            Binding binding = bindings.get(tensor.name());
            if (binding == null) {
                problems.add("'" + tensor.name() + "' has no device address (bind or allocate it)");
            } else if (tensor.dtype() != null && binding.bytes() < byteSize(tensor.name())) {
                problems.add("'" + tensor.name() + "' needs " + byteSize(tensor.name()) + " bytes at shape "
                        + Arrays.toString(shape(tensor.name())) + " but its buffer holds " + binding.bytes());
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalStateException("cannot run " + engine.source() + ": " + String.join("; ", problems));
        }
        ready = true;
    }

    /**
     * Captures one enqueue as a CUDA graph. TensorRT finishes deferred set-up (shape-dependent
     * allocations) on the first enqueue after shapes change, which must not happen inside a capture,
     * so one ordinary enqueue runs first. The graph is tied to the current shapes and addresses.
     */
    public CudaGraph captureGraph(CudaStream stream) {
        enqueue(stream);
        return CudaGraph.capture(stream, this::enqueue);
    }

    /**
     * Queues the upload of {@code tensor} into the tensor's device buffer, through a pinned staging
     * buffer. Each tensor has one staging buffer: upload it again only after the stream has passed
     * the previous copy (after a synchronization), or the earlier copy may read the newer data.
     */
    public void uploadAsync(String name, Tensor tensor, CudaStream stream) {
        TrtTensorInfo info = engine.tensor(name);
        if (tensor.dtype() != dtypeOf(info)) {
            throw new IllegalArgumentException("'" + name + "' is " + info.typeName() + ", got " + tensor);
        }
        Binding binding = binding(name);
        if (tensor.byteSize() > binding.bytes()) {
            throw new IllegalArgumentException(tensor + " does not fit the " + binding.bytes() + " bytes bound to '" + name + "'");
        }
        PinnedBuffer pinned = staging(name, tensor.byteSize());
        pinned.put(tensor);
        Cuda.copyToDeviceAsync(binding.address(), pinned, tensor.byteSize(), stream, "'" + name + "'");
    }

    /** Queues the read-back of the tensor's device buffer into its pinned staging buffer. */
    public void downloadAsync(String name, CudaStream stream) {
        long bytes = byteSize(name);
        Cuda.copyToHostAsync(staging(name, bytes), binding(name).address(), bytes, stream, "'" + name + "'");
    }

    /** The tensor read back by {@link #downloadAsync}; call once the stream has been synchronized. */
    public Tensor downloaded(String name) {
        TrtTensorInfo info = engine.tensor(name);
        PinnedBuffer pinned = staging.get(name);
        if (pinned == null) {
            throw new IllegalStateException("'" + name + "' was not downloaded");
        }
        return pinned.toTensor(dtypeOf(info), shape(name));
    }

    private PinnedBuffer staging(String name, long bytes) {
        PinnedBuffer pinned = staging.get(name);
        if (pinned == null || pinned.byteSize() < bytes) {
            if (pinned != null) {
                pinned.close();
            }
            pinned = PinnedBuffer.allocate(bytes, "staging for '" + name + "'");
            staging.put(name, pinned);
        }
        return pinned;
    }

    /**
     * One whole inference: sets dynamic input shapes from {@code inputs}, uploads them, enqueues, reads
     * every output back and waits. Exactly one counted synchronization (the final stream sync).
     */
    public Map<String, Tensor> run(Map<String, Tensor> inputs, CudaStream stream) {
        checkFeeds(inputs);
        for (TrtTensorInfo input : engine.inputs()) {
            if (input.isDynamic()) {
                setInputShape(input.name(), inputs.get(input.name()).shape());
            }
        }
        ensureBuffers();
        for (TrtTensorInfo input : engine.inputs()) {
            uploadAsync(input.name(), inputs.get(input.name()), stream);
        }
        enqueue(stream);
        for (TrtTensorInfo output : engine.outputs()) {
            downloadAsync(output.name(), stream);
        }
        stream.synchronize();
        Map<String, Tensor> results = new LinkedHashMap<>();
        for (TrtTensorInfo output : engine.outputs()) {
            results.put(output.name(), downloaded(output.name()));
        }
        return Collections.unmodifiableMap(results);
    }

    private void checkFeeds(Map<String, Tensor> inputs) {
        List<String> problems = new ArrayList<>();
        for (TrtTensorInfo input : engine.inputs()) {
            Tensor tensor = inputs.get(input.name());
            if (tensor == null) {
                problems.add("missing input " + input);
            } else if (tensor.dtype() != input.dtype()) {
                problems.add("input '" + input.name() + "' is " + tensor + ", the engine expects " + input.typeName());
            } else if (!input.isDynamic() && !Arrays.equals(tensor.shape(), input.shape())) {
                problems.add("input '" + input.name() + "' has shape " + Arrays.toString(tensor.shape())
                        + ", the engine expects " + Arrays.toString(input.shape()));
            }
        }
        for (String name : inputs.keySet()) {
            if (engine.inputs().stream().noneMatch(t -> t.name().equals(name))) {
                problems.add("unknown input '" + name + "'");
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("cannot run " + engine.source() + ": " + String.join("; ", problems));
        }
    }

    IExecutionContext handle() {
        if (closed) {
            throw new IllegalStateException("the execution context of " + engine.source() + " is closed");
        }
        return context;
    }

    /**
     * Frees the buffers this context owns (I/O, staging, and its own activation memory). The native
     * context object itself cannot be deleted from Java (see {@link TrtEngine}). Make sure no work
     * using it is still queued.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        ownedBuffers.values().forEach(DeviceBuffer::close);
        staging.values().forEach(PinnedBuffer::close);
        if (ownedActivations != null) {
            ownedActivations.close();
        }
    }
}
