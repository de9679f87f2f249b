package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaMemsetAsync;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Device memory from cudaMalloc, freed on {@link #close()}. Holds engine inputs and outputs, or the
 * activation memory that several TensorRT execution contexts share.
 *
 * <p>Copies go through a {@link PinnedBuffer} and only queue work on a stream: the runtime's streams
 * do not wait for the legacy default stream, so a blocking cudaMemcpy beside them could read or
 * write before queued work is done.
 */
public final class DeviceBuffer implements AutoCloseable {

    private final Pointer pointer;
    private final long byteSize;
    private final String label;
    private boolean closed;

    private DeviceBuffer(Pointer pointer, long byteSize, String label) {
        this.pointer = pointer;
        this.byteSize = byteSize;
        this.label = label;
    }

    /** Allocates {@code byteSize} bytes; {@code label} names the buffer in error messages. */
    public static DeviceBuffer allocate(long byteSize, String label) {
        if (byteSize < 0) {
            throw new IllegalArgumentException("negative size " + byteSize + " for " + label);
        }
        return new DeviceBuffer(Cuda.malloc(byteSize, label), byteSize, label);
    }

    /** The device address, for TensorRT's setTensorAddress and cudart calls. */
    public Pointer pointer() {
        checkOpen();
        return pointer;
    }

    /** The device address {@code offset} bytes into this buffer. */
    public Pointer pointer(long offset) {
        checkOpen();
        if (offset < 0 || offset > byteSize) {
            throw new IndexOutOfBoundsException("offset " + offset + " outside " + this);
        }
        return new BytePointer(pointer).position(offset);
    }

    public long byteSize() {
        return byteSize;
    }

    public String label() {
        return label;
    }

    /** Queues a fill of the whole buffer with {@code value} (per byte). */
    public void fillAsync(int value, CudaStream stream) {
        Cuda.check(cudaMemsetAsync(pointer(), value, byteSize, stream.handle()), "cudaMemsetAsync(" + label + ")");
    }

    /** Queues a copy of the first {@code bytes} of {@code source} (pinned) into this buffer. */
    public void copyFromAsync(PinnedBuffer source, long bytes, CudaStream stream) {
        checkSize(bytes, source.byteSize());
        Cuda.copyToDeviceAsync(pointer(), source, bytes, stream, label);
    }

    /** Queues a copy of this buffer's first {@code bytes} into {@code target} (pinned). */
    public void copyToAsync(PinnedBuffer target, long bytes, CudaStream stream) {
        checkSize(bytes, target.byteSize());
        Cuda.copyToHostAsync(target, pointer(), bytes, stream, label);
    }

    private void checkSize(long bytes, long otherSize) {
        if (bytes > byteSize || bytes > otherSize) {
            throw new IllegalArgumentException(String.format(
                    "copy of %d bytes does not fit: %s holds %d bytes, the host side %d", bytes, label, byteSize, otherSize));
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(this + " is closed");
        }
    }

    /** Frees the memory (cudaFree waits for work using it). Closing twice is harmless. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Cuda.free(pointer, label);
        }
    }

    @Override
    public String toString() {
        return "DeviceBuffer(" + label + ", " + byteSize + " bytes)";
    }
}
