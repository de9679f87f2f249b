package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.util.Arrays;

/**
 * A tensor in a {@link LoopDevice}'s memory: a typed, shaped window of one allocation, which the
 * device alone can read. Views share the allocation; the loop binds one row of a per-step table
 * (timesteps, coefficients, noise) by taking a view of it, which costs nothing on the device.
 */
public final class DeviceTensor {
    private final Object allocation;
    private final String label;
    private final DType dtype;
    private final long[] shape;
    private final long offset;

    /** For devices: a window of {@code allocation} starting {@code offset} elements in. */
    DeviceTensor(Object allocation, String label, DType dtype, long[] shape, long offset) {
        this.allocation = allocation;
        this.label = label;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.offset = offset;
        Tensor.numElements(shape);
    }

    /** The device's own handle of the allocation (a host buffer, a CUDA pointer). */
    Object allocation() {
        return allocation;
    }

    public String label() {
        return label;
    }

    public DType dtype() {
        return dtype;
    }

    public long[] shape() {
        return shape.clone();
    }

    /** Where the window starts, in elements from the start of the allocation. */
    public long offset() {
        return offset;
    }

    public long numElements() {
        return Tensor.numElements(shape);
    }

    public long byteSize() {
        return numElements() * dtype.byteSize();
    }

    /**
     * Row {@code index} along the first axis, with the remaining axes as its shape (or {@code shape}
     * when given: a row of a [steps, n] timestep table bound as a [n] input).
     */
    public DeviceTensor row(long index, long... asShape) {
        if (shape.length == 0 || index < 0 || index >= shape[0]) {
            throw new IndexOutOfBoundsException("row " + index + " of " + label + " " + Tensor.formatShape(shape));
        }
        long[] rowShape = Arrays.copyOfRange(shape, 1, shape.length);
        long rowElements = Tensor.numElements(rowShape);
        long[] viewShape = asShape.length > 0 ? asShape : rowShape;
        if (Tensor.numElements(viewShape) != rowElements) {
            throw new IllegalArgumentException("a row of " + label + " has " + rowElements + " elements, not the "
                    + Tensor.numElements(viewShape) + " of " + Tensor.formatShape(viewShape));
        }
        return new DeviceTensor(allocation, label + "[" + index + "]", dtype, viewShape, offset + index * rowElements);
    }

    /** The first {@code count} entries along the first axis (the unconditional half of a guided batch, say). */
    public DeviceTensor head(long count) {
        if (shape.length == 0 || count < 1 || count > shape[0]) {
            throw new IndexOutOfBoundsException("first " + count + " of " + label + " " + Tensor.formatShape(shape));
        }
        long[] s = shape.clone();
        s[0] = count;
        return new DeviceTensor(allocation, label + "[:" + count + "]", dtype, s, offset);
    }

    @Override
    public String toString() {
        return label + " " + dtype.displayName() + Tensor.formatShape(shape);
    }
}
