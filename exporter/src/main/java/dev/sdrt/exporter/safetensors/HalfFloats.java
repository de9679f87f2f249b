package dev.sdrt.exporter.safetensors;

/**
 * Exact widening of 16-bit floats to float32 (Java 17 has no Float.float16ToFloat). Both widenings are
 * exact for every input: each fp16 and bf16 value, subnormals included, is representable in float32.
 */
final class HalfFloats {
    private HalfFloats() {
    }

    /** IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. */
    static float fp16ToFloat(short bits) {
        int half = bits & 0xffff;
        int sign = (half & 0x8000) << 16;
        int exponent = (half >>> 10) & 0x1f;
        int mantissa = half & 0x3ff;
        if (exponent == 0x1f) {
            // Infinity or NaN; the NaN payload moves into the top of the float32 mantissa.
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exponent != 0) {
            // Normal: rebias the exponent from 15 to 127.
            return Float.intBitsToFloat(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
        }
        // Zero or subnormal: mantissa * 2^-24, a normal float32, and the product is exact.
        float magnitude = mantissa * 0x1p-24f;
        return sign != 0 ? -magnitude : magnitude;
    }

    /** bfloat16 is the top half of a float32, so widening is a shift. */
    static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }
}
