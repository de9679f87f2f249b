package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The loop device on the host: allocations are byte buffers and models are ONNX Runtime sessions.
 * Queued work runs at once, in order, which is what a single stream would do; a capture records
 * launches without running them, as CUDA graph capture does, so code that relies on replays reading
 * the tensors' contents at replay time is exercised here too.
 *
 * <p>Not thread-safe: one loop drives one device.
 */
public final class CpuLoopDevice implements LoopDevice {
    private final int threads;
    private long synchronizations;
    private List<Runnable> recording;

    /** @param threads ONNX Runtime intra-op threads per model, 0 for one per core */
    public CpuLoopDevice(int threads) {
        this.threads = threads;
    }

    private record OrtModel(OrtRunner runner) implements LoopModel {
        @Override
        public String name() {
            return runner.model().toString();
        }

        @Override
        public Map<String, TensorSpec> inputs() {
            return runner.inputs();
        }

        @Override
        public Map<String, TensorSpec> outputs() {
            return runner.outputs();
        }

        @Override
        public void close() {
            runner.close();
        }
    }

    @Override
    public LoopModel load(Path model) {
        OrtRunner.Builder b = OrtRunner.builder(model);
        if (threads > 0) {
            b.intraOpThreads(threads);
        }
        return new OrtModel(b.build());
    }

    @Override
    public DeviceTensor allocate(String label, DType dtype, long... shape) {
        long bytes = Tensor.numElements(shape) * dtype.byteSize();
        ByteBuffer memory = ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
        return new DeviceTensor(memory, label, dtype, shape, 0);
    }

    /** Host memory: the garbage collector takes it back once nothing refers to the tensor. */
    @Override
    public void free(DeviceTensor tensor) {
        if (tensor.offset() != 0) {
            throw new IllegalArgumentException("free the tensor allocate returned, not a view of it: " + tensor);
        }
    }

    @Override
    public void upload(List<DeviceTensor> targets, List<Tensor> sources) {
        if (recording != null) {
            throw new IllegalStateException("uploads cannot be captured; upload before capturing or replaying");
        }
        if (targets.size() != sources.size()) {
            throw new IllegalArgumentException(targets.size() + " targets for " + sources.size() + " sources");
        }
        for (int i = 0; i < targets.size(); i++) {
            DeviceTensor target = targets.get(i);
            Tensor source = sources.get(i);
            if (source.dtype() != target.dtype() || source.numElements() != target.numElements()) {
                throw new IllegalArgumentException("cannot upload " + source.dtype().displayName()
                        + Tensor.formatShape(source.shape()) + " into " + target);
            }
            window(target).put(source.buffer());
        }
    }

    @Override
    public void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
        OrtRunner runner = ((OrtModel) model).runner();
        Map<String, DeviceTensor> in = Map.copyOf(inputs);
        Map<String, DeviceTensor> out = Map.copyOf(outputs);
        Runnable run = () -> {
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            in.forEach((name, t) -> feeds.put(name, Tensor.copyOf(t.dtype(), t.shape(), window(t))));
            Map<String, Tensor> results = runner.run(feeds);
            out.forEach((name, target) -> {
                Tensor result = results.get(name);
                if (result == null) {
                    throw new IllegalStateException(model.name() + " has no output '" + name + "'; outputs: " + results.keySet());
                }
                if (result.dtype() != target.dtype() || result.numElements() != target.numElements()) {
                    throw new IllegalStateException(model.name() + " output '" + name + "' is " + result.dtype().displayName()
                            + Tensor.formatShape(result.shape()) + ", bound to " + target);
                }
                window(target).put(result.buffer());
            });
        };
        if (recording != null) {
            recording.add(run);
        } else {
            run.run();
        }
    }

    @Override
    public Replay capture(Runnable work) {
        if (recording != null) {
            throw new IllegalStateException("already capturing");
        }
        recording = new ArrayList<>();
        List<Runnable> launches;
        try {
            work.run();
        } finally {
            launches = recording;
            recording = null;
        }
        List<Runnable> recorded = List.copyOf(launches);
        return new Replay() {
            @Override
            public void launch() {
                if (recording != null) {
                    recording.addAll(recorded);
                } else {
                    recorded.forEach(Runnable::run);
                }
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public List<Tensor> download(DeviceTensor... sources) {
        if (recording != null) {
            throw new IllegalStateException("a download cannot be captured");
        }
        synchronizations++;
        List<Tensor> out = new ArrayList<>();
        for (DeviceTensor source : sources) {
            out.add(Tensor.copyOf(source.dtype(), source.shape(), window(source)));
        }
        return out;
    }

    @Override
    public long synchronizations() {
        return synchronizations;
    }

    /** The bytes of a tensor's window, position 0 and limit at its end. */
    private static ByteBuffer window(DeviceTensor t) {
        ByteBuffer memory = ((ByteBuffer) t.allocation()).duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int start = Math.toIntExact(t.offset() * t.dtype().byteSize());
        memory.position(start).limit(Math.toIntExact(start + t.byteSize()));
        return memory.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "the CPU (ONNX Runtime)";
    }
}
