package dev.sdrt.graphs.ir;

import ai.onnx.proto.OnnxMl.AttributeProto;
import com.google.protobuf.ByteString;

/** Builds ONNX attribute protos from plain Java values. */
final class Attributes {
    private Attributes() {
    }

    static AttributeProto of(String key, Object value) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(key);
        if (value instanceof Integer || value instanceof Long) {
            b.setType(AttributeProto.AttributeType.INT).setI(((Number) value).longValue());
        } else if (value instanceof Float || value instanceof Double) {
            b.setType(AttributeProto.AttributeType.FLOAT).setF(((Number) value).floatValue());
        } else if (value instanceof String s) {
            b.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(s));
        } else if (value instanceof long[] longs) {
            b.setType(AttributeProto.AttributeType.INTS);
            for (long l : longs) {
                b.addInts(l);
            }
        } else if (value instanceof int[] ints) {
            b.setType(AttributeProto.AttributeType.INTS);
            for (int i : ints) {
                b.addInts(i);
            }
        } else if (value instanceof float[] floats) {
            b.setType(AttributeProto.AttributeType.FLOATS);
            for (float f : floats) {
                b.addFloats(f);
            }
        } else if (value instanceof String[] strings) {
            b.setType(AttributeProto.AttributeType.STRINGS);
            for (String s : strings) {
                b.addStrings(ByteString.copyFromUtf8(s));
            }
        } else if (value instanceof TensorData t) {
            b.setType(AttributeProto.AttributeType.TENSOR).setT(TensorProtos.toInlineProto(t, key));
        } else {
            throw new IllegalArgumentException("attribute " + key + ": unsupported value type "
                    + (value == null ? "null" : value.getClass().getSimpleName()));
        }
        return b.build();
    }
}
