package dev.sdrt.graphs.ir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.Supplier;

/**
 * The contents of a constant tensor (an initializer or a Constant node's value): element type,
 * dimensions and little-endian raw bytes.
 *
 * <p>Bytes may live in memory (a heap buffer or a memory-mapped region of an external data file), or be produced on
 * demand (random weights for a multi-GB export are generated while saving, never all held at once).
 */
public abstract class TensorData {
    private final DataType type;
    private final long[] dims;

    protected TensorData(DataType type, long[] dims) {
        this.type = type;
        this.dims = dims.clone();
        for (long d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in " + TensorProtos.shortDims(dims));
            }
        }
    }

    public DataType type() {
        return type;
    }

    public long[] dims() {
        return dims.clone();
    }

    public int rank() {
        return dims.length;
    }

    public long numElements() {
        long n = 1;
        for (long d : dims) {
            if (d == 0) {
                return 0; // empty, however large the other dimensions
            }
        }
        for (long d : dims) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long byteSize() {
        return Math.multiplyExact(numElements(), (long) type.byteSize());
    }

    /** A little-endian, read-only view of the raw bytes, positioned at 0. */
    public abstract ByteBuffer bytes();

    /** True when the bytes are cheap to read again (in memory or mapped), false when generated. */
    public boolean isMaterialized() {
        return true;
    }

    /** The same bytes with other dimensions of equal element count. */
    public TensorData reshape(long... newDims) {
        TensorData source = this;
        TensorData reshaped = new TensorData(type, newDims) {
            @Override
            public ByteBuffer bytes() {
                return source.bytes();
            }

            @Override
            public boolean isMaterialized() {
                return source.isMaterialized();
            }
        };
        if (reshaped.numElements() != numElements()) {
            throw new IllegalArgumentException("cannot reshape " + TensorProtos.shortDims(dims) + " to " + TensorProtos.shortDims(newDims));
        }
        return reshaped;
    }

    // ---- factories ----

    public static TensorData of(DataType type, long[] dims, ByteBuffer bytes) {
        ByteBuffer copy = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        TensorData data = new InMemory(type, dims, copy);
        if (copy.remaining() != data.byteSize()) {
            throw new IllegalArgumentException("tensor " + type + TensorProtos.shortDims(dims) + " needs " + data.byteSize()
                    + " bytes, got " + copy.remaining());
        }
        return data;
    }

    public static TensorData ofFloats(long[] dims, float... values) {
        ByteBuffer b = allocate(values.length * 4L);
        b.asFloatBuffer().put(values);
        return of(DataType.FLOAT, dims, b);
    }

    public static TensorData ofLongs(long[] dims, long... values) {
        ByteBuffer b = allocate(values.length * 8L);
        b.asLongBuffer().put(values);
        return of(DataType.INT64, dims, b);
    }

    public static TensorData ofInts(long[] dims, int... values) {
        ByteBuffer b = allocate(values.length * 4L);
        b.asIntBuffer().put(values);
        return of(DataType.INT32, dims, b);
    }

    /** A rank-1 INT64 tensor, the usual form of shape and axes operands. */
    public static TensorData vector(long... values) {
        return ofLongs(new long[] {values.length}, values);
    }

    public static TensorData scalar(float value) {
        return ofFloats(new long[0], value);
    }

    public static TensorData scalar(long value) {
        return ofLongs(new long[0], value);
    }

    /** Floats stored as the given floating-point type (FLOAT, FLOAT16 or BFLOAT16). */
    public static TensorData ofFloatsAs(DataType type, long[] dims, float[] values) {
        return switch (type) {
            case FLOAT -> ofFloats(dims, values);
            case FLOAT16, BFLOAT16 -> {
                ByteBuffer b = allocate(values.length * 2L);
                for (float v : values) {
                    b.putShort(type == DataType.FLOAT16 ? Float16.fromFloat(v) : Float16.bfloat16FromFloat(v));
                }
                b.flip();
                yield of(type, dims, b);
            }
            default -> throw new IllegalArgumentException("not a float type: " + type);
        };
    }

    /** Bytes produced by {@code generator} each time they are read; nothing is retained. */
    public static TensorData generated(DataType type, long[] dims, Supplier<ByteBuffer> generator) {
        return new Generated(type, dims, generator);
    }

    static ByteBuffer allocate(long bytes) {
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor of " + bytes + " bytes is larger than 2 GiB");
        }
        return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    // ---- readers for small constants and for passes that transform weights ----

    /** Elements as float; accepts FLOAT, FLOAT16, BFLOAT16 and DOUBLE. */
    public float[] toFloats() {
        ByteBuffer b = bytes();
        int n = Math.toIntExact(numElements());
        float[] out = new float[n];
        switch (type) {
            case FLOAT -> b.asFloatBuffer().get(out);
            case FLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Float16.toFloat(b.getShort(2 * i));
                }
            }
            case BFLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Float16.bfloat16ToFloat(b.getShort(2 * i));
                }
            }
            case DOUBLE -> {
                for (int i = 0; i < n; i++) {
                    out[i] = (float) b.getDouble(8 * i);
                }
            }
            default -> throw new IllegalStateException("tensor of type " + type + " is not floating point");
        }
        return out;
    }

    /** Elements as long; accepts the integer types and BOOL. */
    public long[] toLongs() {
        ByteBuffer b = bytes();
        int n = Math.toIntExact(numElements());
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (type) {
                case INT64, UINT64 -> b.getLong(8 * i);
                case INT32 -> b.getInt(4 * i);
                case UINT32 -> Integer.toUnsignedLong(b.getInt(4 * i));
                case INT16 -> b.getShort(2 * i);
                case UINT16 -> Short.toUnsignedInt(b.getShort(2 * i));
                case INT8 -> b.get(i);
                case UINT8, BOOL -> Byte.toUnsignedInt(b.get(i));
                default -> throw new IllegalStateException("tensor of type " + type + " is not an integer type");
            };
        }
        return out;
    }

    @Override
    public String toString() {
        return type + TensorProtos.shortDims(dims);
    }

    private static final class InMemory extends TensorData {
        private final ByteBuffer bytes;

        InMemory(DataType type, long[] dims, ByteBuffer bytes) {
            super(type, dims);
            this.bytes = bytes.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        public ByteBuffer bytes() {
            return bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    private static final class Generated extends TensorData {
        private final Supplier<ByteBuffer> generator;

        Generated(DataType type, long[] dims, Supplier<ByteBuffer> generator) {
            super(type, dims);
            this.generator = generator;
        }

        @Override
        public ByteBuffer bytes() {
            ByteBuffer b = generator.get().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            if (b.remaining() != byteSize()) {
                throw new IllegalStateException("generator for " + this + " produced " + b.remaining() + " bytes, expected " + byteSize());
            }
            return b;
        }

        @Override
        public boolean isMaterialized() {
            return false;
        }
    }
}
