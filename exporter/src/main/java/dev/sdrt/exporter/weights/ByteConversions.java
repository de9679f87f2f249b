package dev.sdrt.exporter.weights;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Float16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Element-type conversion and transposition of raw little-endian float tensors. */
final class ByteConversions {
    private ByteConversions() {
    }

    static ByteBuffer fromFloats(float[] values, DataType type) {
        ByteBuffer out = ByteBuffer.allocate(values.length * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case FLOAT -> out.asFloatBuffer().put(values);
            case FLOAT16 -> {
                for (int i = 0; i < values.length; i++) {
                    out.putShort(2 * i, Float16.fromFloat(values[i]));
                }
            }
            case BFLOAT16 -> {
                for (int i = 0; i < values.length; i++) {
                    out.putShort(2 * i, Float16.bfloat16FromFloat(values[i]));
                }
            }
            default -> throw new IllegalArgumentException("weights cannot be exported as " + type);
        }
        return out;
    }

    /** Transposes a row-major [rows, cols] matrix of floats. */
    static float[] transpose(float[] m, int rows, int cols) {
        float[] t = new float[m.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = m[r * cols + c];
            }
        }
        return t;
    }
}
