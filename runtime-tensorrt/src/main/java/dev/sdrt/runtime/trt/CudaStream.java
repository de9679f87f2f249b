package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaStreamCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamNonBlocking;

import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * A CUDA stream owned by sdrt. Created non-blocking, so work on it never waits for the legacy
 * default stream (and it can be captured into a CUDA graph, which the default stream cannot).
 */
public final class CudaStream implements AutoCloseable {

    private final CUstream_st handle;
    private boolean closed;

    private CudaStream(CUstream_st handle) {
        this.handle = handle;
    }

    /** Creates a new non-blocking stream on the current device. */
    public static CudaStream create() {
        CUstream_st handle = new CUstream_st();
        Cuda.check(cudaStreamCreateWithFlags(handle, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        return new CudaStream(handle);
    }

    /** The raw cudaStream_t, for TensorRT and cudart calls. */
    public CUstream_st handle() {
        checkOpen();
        return handle;
    }

    /** Waits for everything queued on this stream; counted by {@link SyncCounter}. */
    public void synchronize() {
        SyncCounter.streamSynchronize(handle());
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the CUDA stream is closed");
        }
    }

    /** Destroys the stream; work already queued still completes. Closing twice is harmless. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Cuda.check(cudaStreamDestroy(handle), "cudaStreamDestroy");
        }
    }
}
