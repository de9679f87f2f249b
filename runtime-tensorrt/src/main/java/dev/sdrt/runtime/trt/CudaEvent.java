package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaEventCreate;
import static org.bytedeco.cuda.global.cudart.cudaEventDestroy;
import static org.bytedeco.cuda.global.cudart.cudaEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cudaEventRecord;

import org.bytedeco.cuda.cudart.CUevent_st;

/**
 * A CUDA event, used to time GPU work: record one before and one after the work on the same stream,
 * wait for the second, then read {@link #elapsedMillisSince}. Timing with events measures what the
 * GPU did between the two points, including any gaps where it waited for the host to launch work.
 */
public final class CudaEvent implements AutoCloseable {

    private final CUevent_st handle;
    private boolean closed;

    private CudaEvent(CUevent_st handle) {
        this.handle = handle;
    }

    /** Creates an event with timing enabled. */
    public static CudaEvent create() {
        CUevent_st handle = new CUevent_st();
        Cuda.check(cudaEventCreate(handle), "cudaEventCreate");
        return new CudaEvent(handle);
    }

    public CUevent_st handle() {
        if (closed) {
            throw new IllegalStateException("the CUDA event is closed");
        }
        return handle;
    }

    /** Queues this event on {@code stream}: it is reached when all earlier work there has finished. */
    public void record(CudaStream stream) {
        Cuda.check(cudaEventRecord(handle(), stream.handle()), "cudaEventRecord");
    }

    /** Blocks until this event has been reached; counted by {@link SyncCounter}. */
    public void synchronize() {
        SyncCounter.eventSynchronize(handle());
    }

    /**
     * Milliseconds of GPU time from {@code start} to this event. Waits for this event first (one
     * counted synchronization), since the elapsed time is only defined once both have been reached.
     */
    public float elapsedMillisSince(CudaEvent start) {
        synchronize();
        float[] millis = {0};
        Cuda.check(cudaEventElapsedTime(millis, start.handle(), handle()), "cudaEventElapsedTime");
        return millis[0];
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Cuda.check(cudaEventDestroy(handle), "cudaEventDestroy");
        }
    }
}
