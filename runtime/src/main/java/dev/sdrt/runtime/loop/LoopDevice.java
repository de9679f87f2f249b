package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Where the denoising loop runs without host-device synchronization: memory, one batched upload per
 * request, model launches queued in order on one stream, and a single synchronizing read-back.
 * Everything but {@link #download} returns without waiting for the device; work runs in the order
 * it was queued. {@link #synchronizations()} counts every call that waits, so tests can assert the
 * loop waits once per image.
 *
 * <p>{@link CpuLoopDevice} runs the same loop on ONNX Runtime on the host, which is how the loop's
 * logic is tested without a GPU; a CUDA device queues the same calls on a stream.
 */
public interface LoopDevice extends AutoCloseable {

    /** Loads a model for this device (an ONNX file here; engines on GPUs). */
    LoopModel load(Path model) throws IOException;

    /** Device memory for one tensor (contents undefined until written). */
    DeviceTensor allocate(String label, DType dtype, long... shape);

    /**
     * Gives back a tensor {@link #allocate} returned (not a view of one). Returns without waiting:
     * memory that queued work may still use is released after the next synchronization. A device
     * frees everything it holds when it closes; this is for callers that outlive many shapes (a
     * service's request loop), so that memory does not grow with every new size.
     */
    void free(DeviceTensor tensor);

    /**
     * Queues copies of the host tensors into the device tensors, pairwise (same dtype and size):
     * one staging buffer and one transfer on devices that have them.
     */
    void upload(List<DeviceTensor> targets, List<Tensor> sources);

    /** Queues one run of {@code model} reading {@code inputs} and writing {@code outputs} (every output bound). */
    void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs);

    /**
     * Records the launches {@code work} queues, without running them, as a replayable unit (a CUDA
     * graph on GPUs): replaying reads whatever the bound tensors hold at that time.
     */
    Replay capture(Runnable work);

    /** Waits once for all queued work, then copies every source to the host. The only synchronizing call. */
    List<Tensor> download(DeviceTensor... sources);

    /** Calls so far that waited for the device. */
    long synchronizations();

    @Override
    void close();

    /** A recorded sequence of launches. */
    interface Replay extends AutoCloseable {
        /** Queues the recorded launches again. */
        void launch();

        @Override
        void close();
    }
}
