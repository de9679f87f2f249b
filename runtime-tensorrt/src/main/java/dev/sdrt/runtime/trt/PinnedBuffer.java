package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaFreeHost;
import static org.bytedeco.cuda.global.cudart.cudaMallocHost;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Page-locked host memory (cudaMallocHost). Copies between it and the device are truly asynchronous;
 * copies from ordinary (pageable) memory, such as a {@link Tensor}'s buffer, may block the host, so
 * the runtime stages uploads and read-backs through these.
 */
public final class PinnedBuffer implements AutoCloseable {

    private final Pointer pointer;
    private final long byteSize;
    private final String label;
    private boolean closed;

    private PinnedBuffer(Pointer pointer, long byteSize, String label) {
        this.pointer = pointer;
        this.byteSize = byteSize;
        this.label = label;
    }

    /** Allocates {@code byteSize} bytes of pinned memory (at most 2 GiB: it is viewed as one ByteBuffer). */
    public static PinnedBuffer allocate(long byteSize, String label) {
        if (byteSize < 0 || byteSize > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("pinned buffer " + label + " of " + byteSize
                    + " bytes: must be between 0 and 2 GiB");
        }
        Pointer pointer = new Pointer();
        Cuda.check(cudaMallocHost(pointer, Math.max(byteSize, 1)), "cudaMallocHost(" + byteSize + " bytes for " + label + ")");
        return new PinnedBuffer(pointer, byteSize, label);
    }

    public Pointer pointer() {
        checkOpen();
        return pointer;
    }

    public long byteSize() {
        return byteSize;
    }

    /** A little-endian view of the whole buffer; valid until {@link #close()}. */
    public ByteBuffer asByteBuffer() {
        checkOpen();
        return new BytePointer(pointer).capacity(byteSize).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Copies {@code tensor}'s bytes to the start of this buffer (host memory only, no CUDA call). */
    public void put(Tensor tensor) {
        if (tensor.byteSize() > byteSize) {
            throw new IllegalArgumentException(tensor + " (" + tensor.byteSize() + " bytes) does not fit " + this);
        }
        asByteBuffer().put(tensor.buffer());
    }

    /** A new tensor holding a copy of this buffer's first bytes; call only after the copy into it completed. */
    public Tensor toTensor(DType dtype, long... shape) {
        long bytes = Tensor.numElements(shape) * dtype.byteSize();
        if (bytes > byteSize) {
            throw new IllegalArgumentException(dtype.displayName() + " " + Tensor.formatShape(shape)
                    + " needs " + bytes + " bytes; " + this + " is smaller");
        }
        return Tensor.copyOf(dtype, shape, asByteBuffer().limit((int) bytes));
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(this + " is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Cuda.check(cudaFreeHost(pointer), "cudaFreeHost(" + label + ")");
        }
    }

    @Override
    public String toString() {
        return "PinnedBuffer(" + label + ", " + byteSize + " bytes)";
    }
}
