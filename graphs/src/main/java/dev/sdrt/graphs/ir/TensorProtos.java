package dev.sdrt.graphs.ir;

import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import dev.sdrt.graphs.io.Messages;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/** Conversions between ONNX TensorProto and {@link TensorData} for tensors held inside the proto. */
public final class TensorProtos {
    private TensorProtos() {
    }

    /**
     * Reads an inline tensor (raw_data or the typed repeated fields). External tensors are resolved
     * by the model loader, which knows the model folder; {@code what} names the tensor in errors
     * (e.g. "initializer 'w'"; null: "tensor" and its name).
     */
    public static TensorData fromProto(TensorProto t, String what) {
        String label = what != null ? what : "tensor " + Messages.quote(t.getName());
        if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
            throw new IllegalArgumentException(label + " uses external data; load it through OnnxModel");
        }
        DataType type = dataType(t, label);
        long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        if (type == DataType.STRING) {
            throw new IllegalArgumentException(label + " holds strings, which sdrt does not support");
        }
        long byteSize = byteSize(label, type, dims);
        if (!t.getRawData().isEmpty()) {
            ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer();
            if (raw.remaining() != byteSize) {
                throw new IllegalArgumentException(label + " has " + raw.remaining() + " bytes of raw_data, expected "
                        + byteSize + " for " + type + shortDims(dims));
            }
            return TensorData.of(type, dims, raw);
        }
        long count = byteSize / type.byteSize();
        // the element count is checked before allocating: a hostile header can claim 2 GiB of elements
        int stored = switch (type) {
            case FLOAT -> t.getFloatDataCount();
            case DOUBLE -> t.getDoubleDataCount();
            case INT64 -> t.getInt64DataCount();
            case UINT32, UINT64 -> t.getUint64DataCount();
            default -> t.getInt32DataCount(); // INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16, BFLOAT16, FLOAT8*
        };
        if (stored != count) {
            throw new IllegalArgumentException(label + " holds " + stored + " elements, its shape "
                    + shortDims(dims) + " needs " + count);
        }
        ByteBuffer b = TensorData.allocate(byteSize);
        switch (type) {
            case FLOAT -> {
                for (int i = 0; i < stored; i++) {
                    b.putFloat(t.getFloatData(i));
                }
            }
            case DOUBLE -> {
                for (int i = 0; i < stored; i++) {
                    b.putDouble(t.getDoubleData(i));
                }
            }
            case INT64 -> {
                for (int i = 0; i < stored; i++) {
                    b.putLong(t.getInt64Data(i));
                }
            }
            case UINT32, UINT64 -> {
                for (int i = 0; i < stored; i++) {
                    if (type == DataType.UINT64) {
                        b.putLong(t.getUint64Data(i));
                    } else {
                        b.putInt((int) t.getUint64Data(i));
                    }
                }
            }
            default -> {
                for (int i = 0; i < stored; i++) {
                    int v = t.getInt32Data(i);
                    switch (type.byteSize()) {
                        case 4 -> b.putInt(v);
                        case 2 -> b.putShort((short) v);
                        default -> b.put((byte) v);
                    }
                }
            }
        }
        b.flip();
        return TensorData.of(type, dims, b);
    }

    /** The tensor's element type; {@code label} (e.g. "initializer 'w'") names it in the error for an unknown one. */
    public static DataType dataType(TensorProto t, String label) {
        try {
            return DataType.fromOnnx(t.getDataType());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(label + ": " + e.getMessage(), e);
        }
    }

    /**
     * Bytes a tensor of {@code type} and {@code dims} holds, refusing negative dimensions and sizes
     * that do not fit in a long (a hostile file can state dims of 2^40 and more).
     */
    public static long byteSize(String label, DataType type, long[] dims) {
        long bytes = type.byteSize();
        for (long d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException(label + " has a negative dimension: " + shortDims(dims));
            }
            if (d == 0) {
                return 0; // empty, however large the other dimensions
            }
        }
        try {
            for (long d : dims) {
                bytes = Math.multiplyExact(bytes, d);
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(label + " of " + type + shortDims(dims)
                    + " would hold more than 2^63 bytes");
        }
        return bytes;
    }

    /** Dims for a message; a hostile tensor may have millions of them. */
    public static String shortDims(long[] dims) {
        return dims.length <= 8 ? Arrays.toString(dims)
                : Arrays.toString(Arrays.copyOf(dims, 8)).replace("]", ", … (" + dims.length + " dims)]");
    }

    /** A TensorProto with the data inline as raw_data. */
    public static TensorProto toInlineProto(TensorData data, String name) {
        return header(data, name).setRawData(ByteString.copyFrom(data.bytes().order(ByteOrder.LITTLE_ENDIAN))).build();
    }

    /** Name, type and dims, without data. */
    public static TensorProto.Builder header(TensorData data, String name) {
        TensorProto.Builder b = TensorProto.newBuilder().setDataType(data.type().onnxCode());
        if (name != null) {
            b.setName(name);
        }
        for (long d : data.dims()) {
            b.addDims(d);
        }
        return b;
    }
}
