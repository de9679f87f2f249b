package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaDeviceSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaEventSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaStreamSynchronize;

import java.util.concurrent.atomic.AtomicLong;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The only place sdrt makes a call that blocks the host until the GPU has caught up:
 * cudaStreamSynchronize, cudaEventSynchronize and cudaDeviceSynchronize (sdrt makes no blocking cudaMemcpy).
 * Each one is counted, because the design allows exactly one synchronization per generated image
 * (the final read-back) and the runtime's tests assert that number.
 *
 * <p>Two counts are kept: a global one ({@link #count()}) and one per thread ({@link
 * #countOnThisThread()}), so a test can measure its own pipeline while other threads also use the
 * GPU. Measure a region with {@code long before = SyncCounter.count(); ...; SyncCounter.count() - before}.
 *
 * <p>Not counted: cudaMalloc/cudaFree and engine deserialization, which may synchronize implicitly but
 * happen while a pipeline is set up or torn down, never inside the denoise loop; and async copies from
 * pageable host memory, which sdrt avoids (it stages through {@link PinnedBuffer}).
 */
public final class SyncCounter {

    private static final AtomicLong TOTAL = new AtomicLong();
    private static final ThreadLocal<long[]> PER_THREAD = ThreadLocal.withInitial(() -> new long[1]);

    private SyncCounter() {}

    /** Synchronizing calls made so far by every thread of this JVM. */
    public static long count() {
        return TOTAL.get();
    }

    /** Synchronizing calls made so far by the calling thread. */
    public static long countOnThisThread() {
        return PER_THREAD.get()[0];
    }

    private static void increment() {
        TOTAL.incrementAndGet();
        PER_THREAD.get()[0]++;
    }

    /** cudaStreamSynchronize: waits until all work queued on {@code stream} has finished. */
    public static void streamSynchronize(CUstream_st stream) {
        increment();
        Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }

    /** cudaEventSynchronize: waits until {@code event} has been reached. */
    public static void eventSynchronize(CUevent_st event) {
        increment();
        Cuda.check(cudaEventSynchronize(event), "cudaEventSynchronize");
    }

    /** cudaDeviceSynchronize: waits for all work on the device. */
    public static void deviceSynchronize() {
        increment();
        Cuda.check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
}
