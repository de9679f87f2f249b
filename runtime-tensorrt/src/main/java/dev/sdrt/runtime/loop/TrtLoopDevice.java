package dev.sdrt.runtime.loop;

import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToDevice;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.CudaException;
import dev.sdrt.runtime.trt.CudaGraph;
import dev.sdrt.runtime.trt.CudaStream;
import dev.sdrt.runtime.trt.DeviceBuffer;
import dev.sdrt.runtime.trt.PinnedBuffer;
import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtEngine;
import dev.sdrt.runtime.trt.TrtException;
import dev.sdrt.runtime.trt.TrtExecutionContext;
import dev.sdrt.runtime.trt.TrtTensorInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.logging.Logger;
import org.bytedeco.javacpp.Pointer;

/**
 * The {@link LoopDevice} on an NVIDIA GPU: TensorRT engines and CUDA memory, everything queued on one
 * CUDA stream, one counted synchronization per {@link #download}.
 *
 * <ul>
 *   <li>{@link #load} takes the pipeline's {@code X.onnx} and loads the engine {@code X.plan} beside
 *       it (built by {@code sdrt build-pipeline}); the model's inputs and outputs are the engine's,
 *       dynamic dimensions -1 and unnamed (engines keep no dimension names; see
 *       {@link LoopModel#outputShapes}).</li>
 *   <li>{@link #allocate} is one cudaMalloc; a view ({@link DeviceTensor#row}, {@link DeviceTensor#head})
 *       binds the allocation's address plus its offset.</li>
 *   <li>{@link #upload} packs every source into one pinned staging buffer (kept, grown when needed)
 *       and queues one cudaMemcpyAsync per run of targets that are contiguous on the device. Staging
 *       space is not reused before the next synchronization, since queued copies may not have read
 *       it yet.</li>
 *   <li>{@link #launch} checks the bound tensors against the engine (names, types, input shapes
 *       within its profile, output shapes as the engine infers them), then sets every tensor address
 *       and calls enqueueV3 on the stream. Each set of input shapes and bound addresses has its own
 *       execution context, and every context of every engine uses one activation buffer
 *       ({@link ActivationMemory}): the launches never overlap.</li>
 *   <li>{@link #capture} records the launches as a CUDA graph. TensorRT does deferred set-up on the
 *       first enqueueV3 of an execution context after its input shapes are set, which must not run
 *       inside a stream capture ("call enqueueV3 once before capturing"). So capture first records
 *       the launches without queueing them, then queues one warm-up enqueue for every execution
 *       context that has never run eagerly, with its inputs bound to the real tensors (only read)
 *       and its outputs to scratch memory, so no tensor the caller sees changes; then it captures the
 *       launches for real. The warm-ups cost one extra run of each model on the first request of a
 *       shape and no synchronization. A capture that CUDA or TensorRT refuses ends as a
 *       {@link LoopDevice.CaptureFailedException}, the stream out of capture mode and CUDA's error
 *       cleared ({@link CudaGraph#capture}), so the caller can queue the same launches eagerly.</li>
 *   <li>{@link #download} queues one asynchronous copy per source into a pinned read-back buffer,
 *       synchronizes the stream once (through {@link dev.sdrt.runtime.trt.SyncCounter}, so it is
 *       counted there and in {@link #synchronizations()}), then copies into tensors on the host.</li>
 * </ul>
 *
 * <p>TensorRT takes only 256-byte aligned tensor addresses, and the loop binds rows of its per-step
 * tables (a 9-float coefficient row starts 36 bytes after the previous one). A view that is not
 * aligned, and any input row of a table, aligned or not, is bound through an aligned slot of the
 * context's: a device-to-device copy into the slot before the launch (and out of it after, for an
 * output), queued and captured like the launch. Rows go through the slot even when aligned (an
 * ancestral sampler's noise rows are, at 512×512) so that every step binds the same addresses and
 * one context serves them all ({@link #throughSlot}).
 *
 * <p>Each model keeps one TensorRT execution context per set of input shapes, all sharing the
 * engine's activation memory (they run one after another on the stream): a captured graph has the
 * context's shape-dependent state baked in, so a context is never re-shaped under a graph that uses
 * it. Device memory from {@link #allocate} lives until {@link #free} or until the device closes; a
 * {@link DenoisingLoop} allocates once per shape and frees what an evicted shape held.
 *
 * <p>Nothing touches CUDA before the first call that needs it, so {@link #load} reports a missing
 * engine file on any machine. Not thread-safe: one loop drives one device.
 *
 * <p>The class is long (about 950 lines) because every part of it shares the stream, the context
 * cache and the slot bookkeeping, which splitting would turn into a wide package-private API; its
 * pure arithmetic is apart and tested without a GPU ({@link StagingPlan}, {@link #bindings}).
 */
public final class TrtLoopDevice implements LoopDevice {

    private static final Logger LOG = Logger.getLogger(TrtLoopDevice.class.getName());

    /** The alignment TensorRT requires of every tensor address (IExecutionContext::setTensorAddress). */
    static final int TRT_ALIGNMENT = 256;

    private CudaStream stream;
    private String gpuName = "";
    private final List<DeviceBuffer> allocations = new ArrayList<>();
    /** Models loaded here (closed by whoever loaded them), whose contexts {@link #free} may retire. */
    private final List<TrtModel> models = new ArrayList<>();
    private final Set<Graph> graphs = Collections.newSetFromMap(new IdentityHashMap<>());
    private PinnedBuffer uploadStaging;
    /** Bytes of {@link #uploadStaging} that queued copies may still read (reset by a synchronization). */
    private long uploadUsed;
    private PinnedBuffer downloadStaging;
    private DeviceBuffer scratch;
    /** Memory that queued work may still use: freed after the next synchronization. */
    private final List<AutoCloseable> freeAfterSync = new ArrayList<>();
    /** Non-null while {@link #capture} records. */
    private List<Op> recording;
    private boolean pending;
    private long synchronizations;
    private boolean closed;

    private static final EngineLocator BESIDE_ONNX = TrtLoopDevice::planFor;

    /** The activation memory of every engine's contexts (freed when the device closes). */
    private final ActivationMemory activations = new ActivationMemory();

    /** Where {@link #load} finds the engine of a model file. */
    private final EngineLocator engines;

    /** Maps a pipeline component's model file to the engine that serves it. */
    @FunctionalInterface
    public interface EngineLocator {
        /** @throws NoSuchFileException when there is no engine for {@code model}, saying how to build one */
        Path engineFor(Path model) throws NoSuchFileException;
    }

    /**
     * A device on the current CUDA device that loads {@code X.plan} beside each {@code X.onnx}
     * ({@link #planFor}); the stream is created on first use.
     */
    public TrtLoopDevice() {
        this(BESIDE_ONNX);
    }

    /**
     * A device that finds engines through {@code engines}, e.g. in a store where engines for several
     * sizes of one model live side by side (sdrt bench's static engines per size and batch).
     */
    public TrtLoopDevice(EngineLocator engines) {
        this.engines = Objects.requireNonNull(engines, "engines");
    }

    // ------------------------------------------------------------------ models

    /**
     * The engine file for a pipeline component: {@code X.plan} beside {@code X.onnx} (a {@code .plan}
     * path is taken as is). Touches no GPU.
     *
     * @throws NoSuchFileException naming the missing engine and the command that builds it
     */
    public static Path planFor(Path model) throws NoSuchFileException {
        String name = model.getFileName().toString();
        Path plan = name.endsWith(".plan") ? model : besideOnnx(model, ".plan");
        if (!Files.isRegularFile(plan)) {
            Path folder = model.toAbsolutePath().getParent();
            throw new NoSuchFileException(plan.toString(), null, "no TensorRT engine for " + name
                    + "; build the pipeline's engines with 'sdrt build-pipeline --model " + folder
                    + "' on the GPU that runs them");
        }
        return plan;
    }

    /**
     * {@code X + suffix} beside {@code X.onnx}: X.plan for build-pipeline's engines, X.calibration.plan
     * for calibrate's tapped UNet.
     */
    public static Path besideOnnx(Path onnx, String suffix) {
        String name = onnx.getFileName().toString();
        return onnx.resolveSibling((name.endsWith(".onnx") ? name.substring(0, name.length() - 5) : name) + suffix);
    }

    @Override
    public LoopModel load(Path model) throws IOException {
        checkOpen();
        Path plan = engines.engineFor(model);
        // Only an engine beside its ONNX file can go stale unnoticed; a store's engines are keyed by content.
        if (engines == BESIDE_ONNX && !plan.equals(model) && Files.isRegularFile(model)
                && Files.getLastModifiedTime(model).compareTo(Files.getLastModifiedTime(plan)) > 0) {
            LOG.warning(plan + " is older than " + model.getFileName() + "; if the ONNX changed, rebuild the engines"
                    + " with 'sdrt build-pipeline'");
        }
        stream();
        TrtEngine engine = TrtEngine.loadShared(plan); // loaded once per process: engines cannot be freed
        try {
            TrtModel loaded = new TrtModel(plan.toString(), engine, activations);
            activations.expect(engine.deviceMemorySize());
            models.add(loaded);
            return loaded;
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
    }

    /** The loop's view of an engine I/O tensor; fails for types sdrt tensors cannot hold (fp8, int4). */
    static TensorSpec specOf(TrtTensorInfo tensor, String engine) {
        if (tensor.dtype() == null) {
            throw new IllegalArgumentException(engine + ": " + tensor + " has a type the device loop cannot bind;"
                    + " keep the graph's inputs and outputs in float32 (the fp16 and qdq passes do by default)");
        }
        return new TensorSpec(tensor.name(), tensor.dtype(), tensor.shape(), List.of());
    }

    /** One engine, with an execution context per set of input shapes. */
    static final class TrtModel implements LoopModel {
        private final String name;
        private final TrtEngine engine;
        private final Map<String, TensorSpec> inputs = new LinkedHashMap<>();
        private final Map<String, TensorSpec> outputs = new LinkedHashMap<>();
        /**
         * Execution contexts by input shapes, one per set of tensor addresses they are launched with.
         * A captured graph replays whatever state a context had when each launch was recorded, and
         * TensorRT advises one context per captured graph: a loop that rebinds one context between
         * launches (ping-pong latents, per-step rows) could replay every launch with the last binding.
         * So each context always sees the same addresses; they share the device's activation memory,
         * as they run one after another on one stream.
         */
        private final Map<String, List<Shaped>> contexts = new HashMap<>();
        private final ActivationMemory activations;
        private boolean closed;

        TrtModel(String name, TrtEngine engine, ActivationMemory activations) {
            this.activations = activations;
            this.name = name;
            this.engine = engine;
            for (TrtTensorInfo t : engine.tensors()) {
                (t.input() ? inputs : outputs).put(t.name(), specOf(t, name));
            }
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public Map<String, TensorSpec> inputs() {
            return Collections.unmodifiableMap(inputs);
        }

        @Override
        public Map<String, TensorSpec> outputs() {
            return Collections.unmodifiableMap(outputs);
        }

        @Override
        public Optional<Map<String, long[]>> outputShapes(Map<String, long[]> inputShapes) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (String input : inputs.keySet()) {
                long[] shape = inputShapes.get(input);
                if (shape == null) {
                    return Optional.empty();
                }
                shapes.put(input, shape);
            }
            Map<String, long[]> out = new LinkedHashMap<>();
            context(shapes, null).outputShapes.forEach((k, v) -> out.put(k, v.clone()));
            return Optional.of(out);
        }

        /**
         * Checks a launch's bindings against the engine and returns the execution context for its
         * input shapes (set up on first use).
         */
        Shaped check(Map<String, DeviceTensor> in, Map<String, DeviceTensor> out) {
            checkNames(in, inputs, "input");
            checkNames(out, outputs, "output");
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (TensorSpec spec : inputs.values()) {
                DeviceTensor t = in.get(spec.name());
                checkType(spec, t, "input");
                long[] shape = t.shape();
                boolean fits = shape.length == spec.rank();
                for (int d = 0; fits && d < shape.length; d++) {
                    fits = spec.isDynamic(d) || spec.shape()[d] == shape[d];
                }
                if (!fits) {
                    throw new IllegalArgumentException(name + ": input '" + spec.name() + "' is " + spec.describe()
                            + ", bound to " + t + "; build engines for this batch and size with 'sdrt build-pipeline'"
                            + " (--dynamic for ranges)");
                }
                shapes.put(spec.name(), shape);
            }
            Shaped shaped = context(shapes, bindings(in, out, TrtLoopDevice::placement));
            for (TensorSpec spec : outputs.values()) {
                DeviceTensor t = out.get(spec.name());
                checkType(spec, t, "output");
                long[] expected = shaped.outputShapes.get(spec.name());
                if (!Arrays.equals(expected, t.shape())) {
                    throw new IllegalStateException(name + ": output '" + spec.name() + "' is " + spec.dtype().displayName()
                            + Tensor.formatShape(expected) + " for these inputs, bound to " + t);
                }
            }
            // Slots for the tensors bound through one (throughSlot); allocated here, never while capturing.
            in.forEach((n, t) -> shaped.slotFor(n, t, true));
            out.forEach((n, t) -> shaped.slotFor(n, t, false));
            return shaped;
        }

        private void checkNames(Map<String, DeviceTensor> bound, Map<String, TensorSpec> declared, String kind) {
            for (String n : bound.keySet()) {
                if (!declared.containsKey(n)) {
                    throw new IllegalArgumentException(name + " has no " + kind + " '" + n + "'; " + kind + "s: "
                            + declared.keySet());
                }
            }
            for (String n : declared.keySet()) {
                if (!bound.containsKey(n)) {
                    throw new IllegalArgumentException("launch of " + name + " binds nothing to " + kind + " '" + n + "'");
                }
            }
        }

        private void checkType(TensorSpec spec, DeviceTensor t, String kind) {
            if (t.dtype() != spec.dtype()) {
                throw new IllegalArgumentException(name + ": " + kind + " '" + spec.name() + "' is " + spec.describe()
                        + ", bound to " + t + " (the device loop needs the graph's inputs and outputs as it declares them)");
            }
        }

        /**
         * The context for these input shapes that is launched with {@code bindings} (null: any, for
         * shape queries); a context not yet launched is taken for the first bindings that ask.
         */
        private Shaped context(Map<String, long[]> inputShapes, Bindings bindings) {
            checkOpen();
            StringBuilder key = new StringBuilder();
            inputShapes.forEach((n, s) -> key.append(n).append(Arrays.toString(s)).append(';'));
            List<Shaped> forShapes = contexts.computeIfAbsent(key.toString(), k -> new ArrayList<>());
            for (Shaped candidate : forShapes) {
                if (bindings == null || candidate.bindings != null && bindings.key().equals(candidate.bindings.key())) {
                    return candidate;
                }
            }
            for (Shaped candidate : forShapes) {
                if (candidate.bindings == null) {
                    candidate.bindings = bindings;
                    return candidate;
                }
            }
            Shaped shaped;
            TrtExecutionContext context = engine.createContext(activations.atLeast(engine.deviceMemorySize()));
            try {
                for (TrtTensorInfo input : engine.inputs()) {
                    if (input.isDynamic()) {
                        context.setInputShape(input.name(), inputShapes.get(input.name()));
                    }
                }
                Map<String, long[]> outputShapes = new LinkedHashMap<>();
                for (TrtTensorInfo output : engine.outputs()) {
                    long[] shape = context.shape(output.name());
                    if (Arrays.stream(shape).anyMatch(d -> d < 0)) {
                        throw new IllegalStateException(name + ": TensorRT cannot tell the shape of output '"
                                + output.name() + "' from the input shapes (" + Arrays.toString(shape)
                                + "); the device loop needs outputs sized by their inputs");
                    }
                    outputShapes.put(output.name(), shape);
                }
                shaped = new Shaped(context, outputShapes);
            } catch (RuntimeException e) {
                context.close();
                throw e;
            }
            shaped.bindings = bindings;
            forShapes.add(shaped);
            return shaped;
        }

        /**
         * Takes out the contexts whose launches read or write memory in [{@code from}, {@code to}) and
         * hands them to {@code retire}: that memory is being freed, and a context keeps its bindings.
         */
        void retireContextsInto(long from, long to, Consumer<Shaped> retire) {
            if (closed) {
                return;
            }
            for (List<Shaped> forShapes : contexts.values()) {
                forShapes.removeIf(shaped -> {
                    boolean bound = shaped.bindings != null && shaped.bindings.touches(from, to);
                    if (bound) {
                        retire.accept(shaped);
                    }
                    return bound;
                });
            }
        }

        private void checkOpen() {
            if (closed) {
                throw new IllegalStateException(name + " is closed");
            }
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            contexts.values().forEach(list -> list.forEach(Shaped::close));
            contexts.clear();
            engine.close();
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /**
     * One activation buffer for the contexts of every engine on this device: their launches run one
     * after another on one stream, so the pipeline needs the largest engine's activations, not their
     * sum (the denoiser's and the VAE decoder's are each hundreds of MiB to GiB at full size). Sized by
     * the engines loaded before the first context is made; an engine loaded later that needs more gets
     * a larger buffer, while contexts made earlier keep the one they were given.
     */
    static final class ActivationMemory {
        private long expected;
        private DeviceBuffer current;
        private final List<DeviceBuffer> outgrown = new ArrayList<>();

        /** Notes that a loaded engine's contexts will need {@code bytes}. */
        void expect(long bytes) {
            expected = Math.max(expected, bytes);
        }

        /** The shared buffer, at least {@code bytes} long. */
        DeviceBuffer atLeast(long bytes) {
            expect(bytes);
            if (current == null || current.byteSize() < bytes) {
                if (current != null) {
                    outgrown.add(current); // contexts made before still point into it
                }
                current = DeviceBuffer.allocate(expected, "activations shared by the loop's engines");
            }
            return current;
        }

        void close() {
            outgrown.forEach(TrtLoopDevice::closeQuietly);
            outgrown.clear();
            closeQuietly(current);
            current = null;
        }
    }

    /** What a context is launched with: the key it is found by, and every address it reads or writes. */
    record Bindings(String key, long[] addresses) {
        /** Whether a bound tensor starts in [{@code from}, {@code to}): memory being freed. */
        boolean touches(long from, long to) {
            return Arrays.stream(addresses).anyMatch(a -> a >= from && a < to);
        }
    }

    /** An execution context whose input shapes are set for good, and the output shapes they give. */
    static final class Shaped {
        final TrtExecutionContext context;
        final Map<String, long[]> outputShapes;
        /** Aligned stand-ins for the tensors bound {@linkplain #throughSlot through a slot}, by tensor name. */
        private final Map<String, DeviceBuffer> slots = new HashMap<>();
        /** Whether enqueueV3 ran outside a capture since the shapes were set (TensorRT's set-up is done). */
        boolean warm;
        /** The bindings this context is launched with; null until its first launch. */
        Bindings bindings;

        Shaped(TrtExecutionContext context, Map<String, long[]> outputShapes) {
            this.context = context;
            this.outputShapes = outputShapes;
        }

        /** Allocates the slot for {@code name} when {@code t} binds through one ({@link #throughSlot}). */
        void slotFor(String name, DeviceTensor t, boolean input) {
            if (throughSlot(t, input, placement(t.allocation())) && !slots.containsKey(name)) {
                slots.put(name, DeviceBuffer.allocate(t.byteSize(), "aligned slot for '" + name + "'"));
            }
        }

        /**
         * Binds every tensor and queues enqueueV3, copying inputs bound through slots into them before
         * and outputs out of theirs after.
         */
        void enqueue(Map<String, DeviceTensor> in, Map<String, DeviceTensor> out, CudaStream stream) {
            in.forEach((n, t) -> context.bind(n, bindable(n, t, true, stream), t.byteSize()));
            List<Runnable> copyBack = new ArrayList<>();
            out.forEach((n, t) -> {
                Pointer at = bindable(n, t, false, stream);
                context.bind(n, at, t.byteSize());
                if (at.address() != address(t).address()) {
                    copyBack.add(() -> copy(address(t), at, t.byteSize(), stream, "'" + n + "' out of its aligned slot"));
                }
            });
            context.enqueue(stream);
            copyBack.forEach(Runnable::run);
        }

        private Pointer bindable(String name, DeviceTensor t, boolean input, CudaStream stream) {
            Pointer at = address(t);
            if (!throughSlot(t, input, placement(t.allocation()))) {
                return at;
            }
            DeviceBuffer slot = slots.get(name);
            if (slot == null || slot.byteSize() < t.byteSize()) {
                throw new IllegalStateException("no aligned slot for '" + name + "' (" + t + ")");
            }
            if (input) {
                copy(slot.pointer(), at, t.byteSize(), stream, "'" + name + "' into its aligned slot");
            }
            return slot.pointer();
        }

        void close() {
            context.close();
            slots.values().forEach(DeviceBuffer::close);
            slots.clear();
        }
    }

    /** Whether TensorRT takes {@code address} as a tensor address. */
    static boolean aligned(long address) {
        return address % TRT_ALIGNMENT == 0;
    }

    /** Where an allocation lies in device memory. */
    record Placement(long address, long bytes) {
    }

    /** The placement of a {@link DeviceBuffer} from {@link #allocate}. */
    static Placement placement(Object allocation) {
        DeviceBuffer buffer = (DeviceBuffer) allocation;
        return new Placement(buffer.pointer().address(), buffer.byteSize());
    }

    /**
     * Whether a launch binds {@code t} to its context's aligned slot (copying into it before the
     * launch, out of it after for an output) instead of at its own address: when TensorRT cannot
     * take that address, and for an input that views part of its allocation. Such an input is a row
     * of a per-step table (timesteps, coefficients, an ancestral sampler's noise), at another address
     * every step; bound where it is, every step would need an execution context of its own, since a
     * context keeps the addresses it is launched with. Through the slot, one context serves every
     * step. Outputs are whole tensors in the loop (and views of scratch memory in warm-ups, which
     * must not go through slots), so only their alignment counts.
     */
    static boolean throughSlot(DeviceTensor t, boolean input, Placement allocation) {
        long at = allocation.address() + byteOffset(t);
        return !aligned(at) || input && t.byteSize() != allocation.bytes();
    }

    /**
     * What a launch binds, as a context sees it: each tensor's address, or "slot" for one bound
     * through the context's aligned slot ({@link #throughSlot}: the same address every time); and
     * every address the launch reads or writes, for {@link TrtModel#retireContextsInto}. One
     * execution context serves each distinct key.
     */
    static Bindings bindings(Map<String, DeviceTensor> in, Map<String, DeviceTensor> out,
            Function<Object, Placement> placements) {
        StringBuilder key = new StringBuilder();
        List<Long> addresses = new ArrayList<>();
        for (Map<String, DeviceTensor> side : List.of(in, out)) {
            boolean input = side == in;
            new TreeMap<>(side).forEach((n, t) -> {
                Placement allocation = placements.apply(t.allocation());
                long at = allocation.address() + byteOffset(t);
                key.append(n).append('=').append(throughSlot(t, input, allocation) ? "slot" : Long.toHexString(at)).append(';');
                addresses.add(at);
            });
            key.append('|');
        }
        return new Bindings(key.toString(), addresses.stream().mapToLong(Long::longValue).toArray());
    }

    /** Queues a device-to-device copy. */
    private static void copy(Pointer to, Pointer from, long bytes, CudaStream stream, String what) {
        Cuda.check(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream.handle()), "cudaMemcpyAsync(" + what + ")");
    }

    // ------------------------------------------------------------------ memory

    @Override
    public DeviceTensor allocate(String label, DType dtype, long... shape) {
        checkOpen();
        stream();
        DeviceBuffer buffer = DeviceBuffer.allocate(Tensor.numElements(shape) * dtype.byteSize(), label);
        allocations.add(buffer);
        return new DeviceTensor(buffer, label, dtype, shape, 0);
    }

    /**
     * Frees a tensor {@link #allocate} returned. Its memory, and the execution contexts whose
     * launches use it, are released now when no work is queued, else after the next synchronization
     * (queued work may still use them); nothing waits here. On a closed device this does nothing
     * (closing freed everything).
     */
    @Override
    public void free(DeviceTensor tensor) {
        if (closed) {
            return;
        }
        if (!(tensor.allocation() instanceof DeviceBuffer buffer) || !allocations.contains(buffer)) {
            throw new IllegalArgumentException(tensor + " was not allocated by this device, or is freed already");
        }
        if (tensor.offset() != 0 || tensor.byteSize() != buffer.byteSize()) {
            throw new IllegalArgumentException("free the tensor allocate returned, not a view of it: " + tensor);
        }
        if (recording != null) {
            throw new IllegalStateException("cannot free " + tensor + " while capturing");
        }
        allocations.remove(buffer);
        long from = buffer.pointer().address();
        long to = from + buffer.byteSize();
        List<AutoCloseable> released = new ArrayList<>();
        for (TrtModel model : models) {
            model.retireContextsInto(from, to, shaped -> released.add(shaped::close));
        }
        released.add(buffer);
        if (pending) {
            freeAfterSync.addAll(released);
        } else {
            released.forEach(TrtLoopDevice::closeQuietly);
        }
    }

    /** The device address of a tensor: its allocation's plus the view's offset. */
    static Pointer address(DeviceTensor t) {
        DeviceBuffer buffer = (DeviceBuffer) t.allocation();
        return new Address(buffer.pointer().address() + byteOffset(t));
    }

    /** Bytes from the allocation's start to the view's first element. */
    static long byteOffset(DeviceTensor t) {
        return t.offset() * t.dtype().byteSize();
    }

    /** A raw address for cudart and TensorRT calls (position 0, owns nothing). */
    static final class Address extends Pointer {
        Address(long address) {
            this.address = address;
        }
    }

    @Override
    public void upload(List<DeviceTensor> targets, List<Tensor> sources) {
        checkOpen();
        if (recording != null) {
            throw new IllegalStateException("uploads cannot be captured; upload before capturing or replaying");
        }
        if (targets.size() != sources.size()) {
            throw new IllegalArgumentException(targets.size() + " targets for " + sources.size() + " sources");
        }
        long[] addresses = new long[targets.size()];
        long[] bytes = new long[targets.size()];
        Object[] allocations = new Object[targets.size()];
        for (int i = 0; i < targets.size(); i++) {
            DeviceTensor target = targets.get(i);
            Tensor source = sources.get(i);
            if (source.dtype() != target.dtype() || source.numElements() != target.numElements()) {
                throw new IllegalArgumentException("cannot upload " + source.dtype().displayName()
                        + Tensor.formatShape(source.shape()) + " into " + target);
            }
            addresses[i] = address(target).address();
            bytes[i] = target.byteSize();
            allocations[i] = target.allocation();
        }
        CudaStream s = stream();
        // Append after what earlier uploads since the last synchronization staged: their copies may not have run yet.
        StagingPlan plan = StagingPlan.of(uploadUsed, addresses, bytes, allocations);
        if (uploadStaging == null || uploadStaging.byteSize() < plan.end()) {
            // Copies already queued may still read the old buffer: keep it until the next synchronization.
            long old = 0;
            if (uploadStaging != null) {
                old = uploadStaging.byteSize();
                freeAfterSync.add(uploadStaging);
            }
            plan = StagingPlan.of(0, addresses, bytes, allocations);
            uploadStaging = PinnedBuffer.allocate(Math.max(plan.end(), Math.min(Math.max(2 * old, 1 << 20), Integer.MAX_VALUE)),
                    "upload staging");
        }
        ByteBuffer staging = uploadStaging.asByteBuffer();
        for (int i = 0; i < sources.size(); i++) {
            ByteBuffer from = sources.get(i).buffer();
            staging.position(Math.toIntExact(plan.offset(i)));
            staging.put(from);
        }
        long host = uploadStaging.pointer().address();
        for (StagingPlan.Copy c : plan.copies()) {
            Cuda.check(cudaMemcpyAsync(new Address(c.deviceAddress()), new Address(host + c.stagingOffset()), c.bytes(),
                    cudaMemcpyHostToDevice, s.handle()), "cudaMemcpyAsync(upload of " + c.count() + " tensors from "
                    + targets.get(c.first()).label() + ", " + c.bytes() + " bytes)");
        }
        uploadUsed = plan.end();
        pending = true;
    }

    // ------------------------------------------------------------------ launches

    /** Something queued on the stream: a launch, or a replay of a captured graph. */
    private interface Op {
        void enqueue(CudaStream stream);
    }

    private record Launch(Shaped shaped, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) implements Op {
        @Override
        public void enqueue(CudaStream stream) {
            shaped.enqueue(inputs, outputs, stream);
        }
    }

    @Override
    public void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
        checkOpen();
        if (!(model instanceof TrtModel trt)) {
            throw new IllegalArgumentException(model.name() + " was not loaded by this TensorRT device");
        }
        Launch launch = new Launch(trt.check(inputs, outputs), Map.copyOf(inputs), Map.copyOf(outputs));
        if (recording != null) {
            recording.add(launch);
        } else {
            launch.enqueue(stream());
            launch.shaped().warm = true;
            pending = true;
        }
    }

    @Override
    public Replay capture(Runnable work) {
        checkOpen();
        if (recording != null) {
            throw new IllegalStateException("already capturing");
        }
        CudaStream s = stream();
        // 1. Record what work queues (checking every launch, creating contexts: nothing is queued yet).
        recording = new ArrayList<>();
        List<Op> ops;
        try {
            work.run();
        } finally {
            ops = recording;
            recording = null;
        }
        // 2. Warm up contexts that never ran: TensorRT's first enqueue after setting shapes must not be captured.
        for (Op op : ops) {
            if (op instanceof Launch launch && !launch.shaped().warm) {
                warmUp(launch, s);
            }
        }
        // 3. Capture for real. The launches passed every check above and each context has run outside a capture,
        // so a failure here is the capture's (an engine whose enqueue cannot be captured, say): the caller runs eagerly.
        CudaGraph graph;
        try {
            graph = CudaGraph.capture(s, captured -> ops.forEach(op -> op.enqueue(captured)));
        } catch (CudaException | TrtException e) {
            throw new CaptureFailedException("CUDA graph capture failed: " + e.getMessage(), e);
        }
        Graph replay = new Graph(graph);
        graphs.add(replay);
        return replay;
    }

    /** One eager enqueue with the outputs bound to scratch memory, so the caller's tensors keep their contents. */
    private void warmUp(Launch launch, CudaStream s) {
        long bytes = 0;
        for (DeviceTensor t : launch.outputs().values()) {
            bytes = alignUp(bytes) + t.byteSize();
        }
        if (scratch == null || scratch.byteSize() < bytes) {
            if (scratch != null) {
                freeAfterSync.add(scratch);
            }
            scratch = DeviceBuffer.allocate(Math.max(bytes, 2 * (scratch == null ? 0 : scratch.byteSize())), "warm-up scratch");
        }
        Map<String, DeviceTensor> scratchOutputs = new LinkedHashMap<>();
        long at = 0;
        for (Map.Entry<String, DeviceTensor> e : launch.outputs().entrySet()) {
            DeviceTensor t = e.getValue();
            at = alignUp(at);
            long elements = at / t.dtype().byteSize();
            scratchOutputs.put(e.getKey(), new DeviceTensor(scratch, "scratch for " + t.label(), t.dtype(), t.shape(), elements));
            at += t.byteSize();
        }
        launch.shaped().enqueue(launch.inputs(), scratchOutputs, s);
        launch.shaped().warm = true;
        pending = true;
    }

    private static long alignUp(long offset) {
        return (offset + TRT_ALIGNMENT - 1) / TRT_ALIGNMENT * TRT_ALIGNMENT;
    }

    /** A captured CUDA graph. */
    private final class Graph implements Replay, Op {
        private final CudaGraph graph;

        Graph(CudaGraph graph) {
            this.graph = graph;
        }

        @Override
        public void launch() {
            checkOpen();
            if (recording != null) {
                recording.add(this);
            } else {
                graph.launch(stream());
                pending = true;
            }
        }

        @Override
        public void enqueue(CudaStream s) {
            graph.launch(s);
        }

        @Override
        public void close() {
            if (graphs.remove(this)) {
                graph.close();
            }
        }
    }

    // ------------------------------------------------------------------ read-back

    @Override
    public List<Tensor> download(DeviceTensor... sources) {
        checkOpen();
        if (recording != null) {
            throw new IllegalStateException("a download cannot be captured");
        }
        CudaStream s = stream();
        long[] addresses = new long[sources.length];
        long[] bytes = new long[sources.length];
        Object[] allocations = new Object[sources.length];
        for (int i = 0; i < sources.length; i++) {
            addresses[i] = address(sources[i]).address();
            bytes[i] = sources[i].byteSize();
            allocations[i] = sources[i].allocation();
        }
        StagingPlan plan = StagingPlan.of(0, addresses, bytes, allocations);
        if (downloadStaging == null || downloadStaging.byteSize() < plan.end()) {
            // No queued copy writes the old buffer (the last download waited for its copies), but cudaFreeHost
            // waits for the whole device: free it after the one wait below, as upload does with its staging.
            if (downloadStaging != null) {
                freeAfterSync.add(downloadStaging);
            }
            downloadStaging = PinnedBuffer.allocate(Math.max(plan.end(), 1 << 20), "download staging");
        }
        long host = downloadStaging.pointer().address();
        for (StagingPlan.Copy c : plan.copies()) {
            Cuda.check(cudaMemcpyAsync(new Address(host + c.stagingOffset()), new Address(c.deviceAddress()), c.bytes(),
                    cudaMemcpyDeviceToHost, s.handle()), "cudaMemcpyAsync(read-back of " + sources[c.first()].label() + ")");
        }
        synchronize();
        ByteBuffer staged = downloadStaging.asByteBuffer();
        List<Tensor> out = new ArrayList<>();
        for (int i = 0; i < sources.length; i++) {
            int start = Math.toIntExact(plan.offset(i));
            ByteBuffer window = staged.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            window.position(start).limit(Math.toIntExact(start + bytes[i]));
            out.add(Tensor.copyOf(sources[i].dtype(), sources[i].shape(), window.slice().order(ByteOrder.LITTLE_ENDIAN)));
        }
        return out;
    }

    /** The one synchronizing call: waits for the stream, then frees what queued work was still using. */
    private void synchronize() {
        stream().synchronize();
        synchronizations++;
        pending = false;
        uploadUsed = 0;
        for (AutoCloseable c : freeAfterSync) {
            closeQuietly(c);
        }
        freeAfterSync.clear();
    }

    @Override
    public long synchronizations() {
        return synchronizations;
    }

    // ------------------------------------------------------------------ lifetime

    private CudaStream stream() {
        if (stream == null) {
            TensorRt.requireAvailable();
            stream = CudaStream.create();
            gpuName = Cuda.deviceName();
        }
        return stream;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the TensorRT loop device is closed");
        }
    }

    /**
     * Waits for queued work (one counted synchronization, only when work is pending), then frees the
     * graphs, memory and stream. Models are closed by whoever loaded them.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            if (stream != null && pending) {
                synchronize();
            }
        } finally {
            closed = true;
            List.copyOf(graphs).forEach(Graph::close);
            freeAfterSync.forEach(TrtLoopDevice::closeQuietly);
            freeAfterSync.clear();
            allocations.forEach(TrtLoopDevice::closeQuietly);
            allocations.clear();
            activations.close();
            closeQuietly(scratch);
            closeQuietly(uploadStaging);
            closeQuietly(downloadStaging);
            closeQuietly(stream);
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception e) {
            LOG.warning("closing " + c + " failed: " + e);
        }
    }

    @Override
    public String toString() {
        return "TensorRT" + (gpuName.isEmpty() ? "" : " on " + gpuName);
    }
}
