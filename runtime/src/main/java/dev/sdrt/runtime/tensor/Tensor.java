package dev.sdrt.runtime.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;

/**
 * A dense, C-ordered (row-major) tensor on the host: a shape, an element type and a direct
 * little-endian {@link ByteBuffer} holding exactly {@code numElements × dtype.byteSize()} bytes.
 *
 * <p>Shape and dtype never change. The contents can: {@link #buffer()} hands out a writable view, so
 * that {@link #allocate} followed by filling the buffer is the cheap way to build a large tensor.
 * {@link #reshape} shares the contents; {@link #castTo} always copies. The buffer is direct so that
 * native runtimes (ONNX Runtime, TensorRT host copies) can read it without another copy, and
 * little-endian because that is what {@code .npy}, safetensors and every supported host use.
 *
 * <p>A direct buffer holds at most {@link Integer#MAX_VALUE} bytes, which bounds a tensor's size.
 */
public final class Tensor {

    private final DType dtype;
    private final long[] shape;
    private final ByteBuffer data;

    private Tensor(DType dtype, long[] shape, ByteBuffer data) {
        this.dtype = dtype;
        this.shape = shape;
        this.data = data;
    }

    /** A tensor whose contents the caller fills through {@link #buffer()}. */
    public static Tensor allocate(DType dtype, long... shape) {
        long[] checkedShape = shape.clone();
        int byteSize = byteSize(dtype, checkedShape);
        return new Tensor(dtype, checkedShape, ByteBuffer.allocateDirect(byteSize).order(ByteOrder.LITTLE_ENDIAN));
    }

    /** A tensor of zeros (false for BOOL). */
    public static Tensor zeros(DType dtype, long... shape) {
        // The JDK zero-fills every newly allocated direct buffer.
        return allocate(dtype, shape);
    }

    public static Tensor ofFloats(long[] shape, float[] values) {
        Tensor tensor = allocate(DType.FLOAT32, shape);
        checkValueCount(tensor, values.length);
        tensor.data.asFloatBuffer().put(values);
        return tensor;
    }

    public static Tensor ofLongs(long[] shape, long[] values) {
        Tensor tensor = allocate(DType.INT64, shape);
        checkValueCount(tensor, values.length);
        tensor.data.asLongBuffer().put(values);
        return tensor;
    }

    public static Tensor ofInts(long[] shape, int[] values) {
        Tensor tensor = allocate(DType.INT32, shape);
        checkValueCount(tensor, values.length);
        tensor.data.asIntBuffer().put(values);
        return tensor;
    }

    /**
     * A tensor holding a copy of the remaining bytes of {@code littleEndianBytes} (its position and
     * limit are left as they were), which must be exactly the tensor's size.
     */
    public static Tensor copyOf(DType dtype, long[] shape, ByteBuffer littleEndianBytes) {
        Tensor tensor = allocate(dtype, shape);
        if (littleEndianBytes.remaining() != tensor.data.capacity()) {
            throw new IllegalArgumentException(String.format(
                    "%s %s needs %d bytes, got %d",
                    dtype.displayName(), formatShape(shape), tensor.data.capacity(), littleEndianBytes.remaining()));
        }
        tensor.data.duplicate().put(littleEndianBytes.duplicate());
        return tensor;
    }

    private static void checkValueCount(Tensor tensor, int valueCount) {
        if (valueCount != tensor.numElements()) {
            throw new IllegalArgumentException(String.format(
                    "shape %s has %d elements but %d values were given",
                    formatShape(tensor.shape), tensor.numElements(), valueCount));
        }
    }

    /**
     * The number of elements of {@code shape}, after checking that no dimension is negative and that
     * the product does not overflow. A rank-0 shape is a scalar with one element.
     */
    public static long numElements(long[] shape) {
        long count = 1;
        for (int axis = 0; axis < shape.length; axis++) {
            if (shape[axis] < 0) {
                throw new IllegalArgumentException(String.format(
                        "shape %s has a negative dimension %d at axis %d", formatShape(shape), shape[axis], axis));
            }
        }
        for (long dim : shape) {
            try {
                count = Math.multiplyExact(count, dim);
            } catch (ArithmeticException overflow) {
                throw new IllegalArgumentException(
                        "shape " + formatShape(shape) + " has more elements than a long can count", overflow);
            }
        }
        return count;
    }

    /** Bytes needed for {@code shape} of {@code dtype}, checked to fit one direct buffer. */
    private static int byteSize(DType dtype, long[] shape) {
        long elements = numElements(shape);
        if (elements > Integer.MAX_VALUE / dtype.byteSize()) {
            throw new IllegalArgumentException(String.format(
                    "%s %s has %d elements, more than the 2 GiB a single buffer can hold",
                    dtype.displayName(), formatShape(shape), elements));
        }
        return (int) elements * dtype.byteSize();
    }

    /** "[2, 4, 16, 16]"; "[]" for a scalar. */
    public static String formatShape(long[] shape) {
        return Arrays.toString(shape);
    }

    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis];
    }

    public long numElements() {
        return data.capacity() / dtype.byteSize();
    }

    public int byteSize() {
        return data.capacity();
    }

    /**
     * A little-endian view of the contents, position 0 and limit at the end. Writes through it change
     * this tensor; moving its position or limit does not.
     */
    public ByteBuffer buffer() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * The values as float32: FLOAT32 as stored, FLOAT16 and BFLOAT16 converted exactly, FLOAT64
     * rounded to nearest float32.
     *
     * @throws IllegalStateException for integer and boolean tensors
     */
    public float[] toFloatArray() {
        float[] values = new float[(int) numElements()];
        switch (dtype) {
            case FLOAT32 -> buffer().asFloatBuffer().get(values);
            case FLOAT16 -> {
                ShortBuffer halves = buffer().asShortBuffer();
                for (int i = 0; i < values.length; i++) {
                    values[i] = Half.halfToFloat(halves.get(i));
                }
            }
            case BFLOAT16 -> {
                ShortBuffer halves = buffer().asShortBuffer();
                for (int i = 0; i < values.length; i++) {
                    values[i] = Half.bfloat16ToFloat(halves.get(i));
                }
            }
            case FLOAT64 -> {
                DoubleBuffer doubles = buffer().asDoubleBuffer();
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) doubles.get(i);
                }
            }
            default -> throw new IllegalStateException(
                    "toFloatArray needs a floating-point tensor, this one is " + this);
        }
        return values;
    }

    /**
     * The values as int64: INT64 as stored, INT32 and INT8 sign-extended, UINT8 zero-extended, BOOL
     * as 0 or 1.
     *
     * @throws IllegalStateException for floating-point tensors
     */
    public long[] toLongArray() {
        long[] values = new long[(int) numElements()];
        switch (dtype) {
            case INT64 -> buffer().asLongBuffer().get(values);
            case INT32 -> {
                IntBuffer ints = buffer().asIntBuffer();
                for (int i = 0; i < values.length; i++) {
                    values[i] = ints.get(i);
                }
            }
            case INT8 -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = data.get(i);
                }
            }
            case UINT8, BOOL -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = data.get(i) & 0xff;
                }
            }
            default -> throw new IllegalStateException(
                    "toLongArray needs an integer or bool tensor, this one is " + this);
        }
        return values;
    }

    /**
     * A copy converted to {@code target}. Supported: among FLOAT32, FLOAT16 and BFLOAT16 (rounding to
     * nearest even when narrowing; see {@link Half}); FLOAT64 to and from FLOAT32, and FLOAT16 or
     * BFLOAT16 to FLOAT64; INT32 to and from INT64 (narrowing fails on a value out of range); and any
     * dtype to itself.
     *
     * <p>FLOAT64 to FLOAT16 or BFLOAT16 is refused: going through float32 rounds twice, which can
     * differ from rounding once. Cast to FLOAT32 first if that is acceptable.
     */
    public Tensor castTo(DType target) {
        if (target == dtype) {
            return copyOf(dtype, shape, data);
        }
        Tensor result = allocate(target, shape);
        ByteBuffer out = result.data;
        int count = (int) numElements();
        switch (target) {
            case FLOAT32 -> {
                if (dtype == DType.FLOAT64) {
                    DoubleBuffer doubles = buffer().asDoubleBuffer();
                    for (int i = 0; i < count; i++) {
                        out.putFloat(i * 4, (float) doubles.get(i));
                    }
                } else {
                    requireSource(target, DType.FLOAT16, DType.BFLOAT16);
                    out.asFloatBuffer().put(toFloatArray());
                }
            }
            case FLOAT16, BFLOAT16 -> {
                requireSource(target, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16);
                float[] values = toFloatArray();
                ShortBuffer halves = out.asShortBuffer();
                for (float value : values) {
                    halves.put(target == DType.FLOAT16 ? Half.floatToHalf(value) : Half.floatToBfloat16(value));
                }
            }
            case FLOAT64 -> {
                requireSource(target, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16);
                float[] values = toFloatArray();
                DoubleBuffer doubles = out.asDoubleBuffer();
                for (float value : values) {
                    doubles.put(value);
                }
            }
            case INT64 -> {
                requireSource(target, DType.INT32);
                out.asLongBuffer().put(toLongArray());
            }
            case INT32 -> {
                requireSource(target, DType.INT64);
                LongBuffer longs = buffer().asLongBuffer();
                IntBuffer ints = out.asIntBuffer();
                for (int i = 0; i < count; i++) {
                    long value = longs.get(i);
                    if (value != (int) value) {
                        throw new IllegalArgumentException(String.format(
                                "cannot cast %s to int32: value %d at flat index %d is out of int32 range",
                                this, value, i));
                    }
                    ints.put((int) value);
                }
            }
            default -> requireSource(target);
        }
        return result;
    }

    private void requireSource(DType target, DType... supportedSources) {
        for (DType source : supportedSources) {
            if (dtype == source) {
                return;
            }
        }
        throw new IllegalArgumentException(String.format(
                "cannot cast %s to %s: castTo converts among float32/float16/bfloat16, float64 to and from"
                        + " float32 (and float16/bfloat16 to float64), and int32 to and from int64",
                dtype.displayName(), target.displayName()));
    }

    /**
     * The same contents under a new shape with the same number of elements; one dimension may be -1,
     * meaning whatever makes the count match. Shares the contents with this tensor.
     */
    public Tensor reshape(long... newShape) {
        long[] resolved = newShape.clone();
        int inferredAxis = -1;
        for (int axis = 0; axis < resolved.length; axis++) {
            if (resolved[axis] == -1) {
                if (inferredAxis >= 0) {
                    throw new IllegalArgumentException(
                            "reshape to " + formatShape(newShape) + ": only one dimension can be -1");
                }
                inferredAxis = axis;
            }
        }
        if (inferredAxis >= 0) {
            resolved[inferredAxis] = 1;
            long knownProduct = numElements(resolved);
            if (knownProduct == 0 || numElements() % knownProduct != 0) {
                throw new IllegalArgumentException(String.format(
                        "cannot reshape %s (%d elements) to %s: no size for the -1 dimension fits",
                        this, numElements(), formatShape(newShape)));
            }
            resolved[inferredAxis] = numElements() / knownProduct;
        }
        if (numElements(resolved) != numElements()) {
            throw new IllegalArgumentException(String.format(
                    "cannot reshape %s (%d elements) to %s (%d elements)",
                    this, numElements(), formatShape(newShape), numElements(resolved)));
        }
        return new Tensor(dtype, resolved, data);
    }

    /** "float32 [2, 4, 16, 16]". */
    @Override
    public String toString() {
        return dtype.displayName() + " " + formatShape(shape);
    }
}
