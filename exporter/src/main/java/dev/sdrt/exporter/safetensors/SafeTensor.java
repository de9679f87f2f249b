package dev.sdrt.exporter.safetensors;

import dev.sdrt.graphs.ir.Float16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/** One tensor of a safetensors file: its header entry and its bytes (little-endian, C order, read-only). */
public final class SafeTensor {
    private final String name;
    private final SafeDType dtype;
    private final long[] shape;
    private final ByteBuffer data;

    SafeTensor(String name, SafeDType dtype, long[] shape, ByteBuffer data) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.data = data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    public String name() {
        return name;
    }

    public SafeDType dtype() {
        return dtype;
    }

    /** The shape; a copy, so callers may change it. An empty array is a scalar. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long elementCount() {
        long count = 1;
        for (long dim : shape) {
            count *= dim; // cannot overflow: the reader checked count * byteSize against the file's byte range
        }
        return count;
    }

    public int byteSize() {
        return data.capacity();
    }

    /**
     * The tensor's bytes: a fresh read-only, little-endian view positioned at 0, so concurrent callers do
     * not disturb each other's position.
     */
    public ByteBuffer data() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * The values as float32, widened exactly from F16 and BF16.
     *
     * @throws UnsupportedOperationException for dtypes other than F32, F16 and BF16
     */
    public float[] toFloatArray() {
        if (dtype != SafeDType.F32 && dtype != SafeDType.F16 && dtype != SafeDType.BF16) {
            throw new UnsupportedOperationException(
                    "tensor '" + name + "' has dtype " + dtype + "; only F32, F16 and BF16 convert to float");
        }
        ByteBuffer bytes = data();
        // Fits an int: the tensor is at most 2 GiB - 1 bytes and each element takes at least 2.
        float[] values = new float[(int) elementCount()];
        switch (dtype) {
            case F32 -> bytes.asFloatBuffer().get(values);
            case F16 -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = Float16.toFloat(bytes.getShort(2 * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = Float16.bfloat16ToFloat(bytes.getShort(2 * i));
                }
            }
            default -> throw new AssertionError(dtype);
        }
        return values;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
