package dev.sdrt.graphs.ir;

import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Conversions between ONNX TensorProto and {@link TensorData} for tensors held inside the proto. */
public final class TensorProtos {
    private TensorProtos() {
    }

    /**
     * Reads an inline tensor (raw_data or the typed repeated fields). External tensors are resolved
     * by the model loader, which knows the model folder; {@code what} names the tensor in errors.
     */
    public static TensorData fromProto(TensorProto t, String what) {
        String label = what != null ? what : t.getName();
        if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
            throw new IllegalArgumentException("tensor '" + label + "' uses external data; load it through OnnxModel");
        }
        DataType type = DataType.fromOnnx(t.getDataType());
        long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        if (type == DataType.STRING) {
            throw new IllegalArgumentException("tensor '" + label + "' holds strings, which sdrt does not support");
        }
        TensorData shapeOnly = TensorData.generated(type, dims, () -> ByteBuffer.allocate(0));
        long count = shapeOnly.numElements();
        if (!t.getRawData().isEmpty()) {
            ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer();
            if (raw.remaining() != shapeOnly.byteSize()) {
                throw new IllegalArgumentException("tensor '" + label + "' has " + raw.remaining() + " bytes of raw_data, expected "
                        + shapeOnly.byteSize() + " for " + type + java.util.Arrays.toString(dims));
            }
            return TensorData.of(type, dims, raw);
        }
        ByteBuffer b = TensorData.allocate(shapeOnly.byteSize());
        int n = Math.toIntExact(count);
        switch (type) {
            case FLOAT -> {
                checkCount(label, t.getFloatDataCount(), n);
                for (int i = 0; i < n; i++) {
                    b.putFloat(t.getFloatData(i));
                }
            }
            case DOUBLE -> {
                checkCount(label, t.getDoubleDataCount(), n);
                for (int i = 0; i < n; i++) {
                    b.putDouble(t.getDoubleData(i));
                }
            }
            case INT64 -> {
                checkCount(label, t.getInt64DataCount(), n);
                for (int i = 0; i < n; i++) {
                    b.putLong(t.getInt64Data(i));
                }
            }
            case UINT32, UINT64 -> {
                checkCount(label, t.getUint64DataCount(), n);
                for (int i = 0; i < n; i++) {
                    if (type == DataType.UINT64) {
                        b.putLong(t.getUint64Data(i));
                    } else {
                        b.putInt((int) t.getUint64Data(i));
                    }
                }
            }
            default -> {
                // INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16, BFLOAT16, FLOAT8*: packed into int32_data
                checkCount(label, t.getInt32DataCount(), n);
                for (int i = 0; i < n; i++) {
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

    private static void checkCount(String label, int actual, int expected) {
        if (actual != expected) {
            throw new IllegalArgumentException("tensor '" + label + "' holds " + actual + " elements, its shape needs " + expected);
        }
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
