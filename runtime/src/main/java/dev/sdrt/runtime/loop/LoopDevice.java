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
     *
     * @throws CaptureFailedException when the device cannot record this work (CUDA or TensorRT
     *     refused the capture); the device is then usable as before, nothing the caller can see has
     *     changed, and the same launches can be queued without a capture
     */
    Replay capture(Runnable work);

    /** Waits once for all queued work, then copies every source to the host. The only synchronizing call. */
    List<Tensor> download(DeviceTensor... sources);

    /** Calls so far that waited for the device. */
    long synchronizations();

    @Override
    void close();

    /**
     * {@link #capture} could not record the work, though the launches themselves are valid (they
     * passed every check a launch makes): a CUDA graph capture that the driver or TensorRT refused,
     * say. Nothing is left half done (on a GPU: the stream is out of capture mode, any partial graph
     * is destroyed and CUDA's last error is cleared), so the caller can run the work eagerly instead.
     * Any other exception from capture means the launches themselves are wrong.
     */
    final class CaptureFailedException extends RuntimeException {
        public CaptureFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** A recorded sequence of launches. */
    interface Replay extends AutoCloseable {
        /** Queues the recorded launches again. */
        void launch();

        @Override
        void close();
    }
}
