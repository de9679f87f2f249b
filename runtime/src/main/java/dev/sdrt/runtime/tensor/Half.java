package dev.sdrt.runtime.tensor;

/**
 * Bit-exact conversions between float32 and the two 16-bit float formats, each held in a {@code
 * short}:
 *
 * <ul>
 *   <li>float16 (IEEE 754 binary16): 1 sign, 5 exponent, 10 mantissa bits; largest finite 65504.
 *   <li>bfloat16: the upper half of a float32 (1 sign, 8 exponent, 7 mantissa bits).
 * </ul>
 *
 * <p>Narrowing rounds to nearest, ties to even, as hardware and numpy do; values beyond the largest
 * finite number become infinity, values too small become subnormals or signed zero. NaN stays NaN
 * with its sign and as many leading payload bits as fit, so any 16-bit pattern survives a round
 * trip through float32 unchanged. Java 20 added {@code Float.floatToFloat16}; this class exists
 * because the project targets Java 17, and it also covers bfloat16.
 */
public final class Half {

    private static final int FLOAT_EXPONENT_BIAS = 127;
    private static final int HALF_EXPONENT_BIAS = 15;
    /** float32 keeps 23 mantissa bits, float16 keeps 10: narrowing drops the low 13. */
    private static final int MANTISSA_SHIFT = 13;

    private Half() {}

    /** float32 to float16 bits, rounding to nearest even. */
    public static short floatToHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xff;
        int mantissa = bits & 0x7f_ffff;

        if (exponent == 0xff) {
            if (mantissa == 0) {
                return (short) (sign | 0x7c00);
            }
            // Keep the top payload bits; if they are all zero, set the quiet bit so that the
            // result is still a NaN rather than infinity.
            int payload = mantissa >>> MANTISSA_SHIFT;
            return (short) (sign | 0x7c00 | (payload == 0 ? 0x200 : payload));
        }

        int halfExponent = exponent - FLOAT_EXPONENT_BIAS + HALF_EXPONENT_BIAS;
        if (halfExponent >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (halfExponent <= 0) {
            return (short) (sign | roundToSubnormalHalf(exponent, mantissa));
        }

        // Normal range. Rounding up may carry into the exponent, and from the largest finite value
        // (0x7bff) into infinity (0x7c00): both are what the bit pattern arithmetic gives.
        int result = (halfExponent << 10) | (mantissa >>> MANTISSA_SHIFT);
        int dropped = mantissa & 0x1fff;
        if (dropped > 0x1000 || (dropped == 0x1000 && (result & 1) == 1)) {
            result++;
        }
        return (short) (sign | result);
    }

    /**
     * Magnitude bits of a float16 subnormal (or zero, or the smallest normal if rounding carries)
     * for a float32 whose value is below the float16 normal range. The value is significand ×
     * 2^(exponent − 150); in units of the smallest float16 subnormal (2^−24) that is significand >>
     * (126 − exponent), rounded to nearest even.
     */
    private static int roundToSubnormalHalf(int exponent, int mantissa) {
        int shift = 126 - exponent;
        // A 24-bit significand shifted by more than 24 is below half the smallest subnormal.
        // float32 subnormals (exponent 0) land here too.
        if (shift > 24) {
            return 0;
        }
        int significand = mantissa | 0x80_0000;
        int result = significand >>> shift;
        int dropped = significand & ((1 << shift) - 1);
        int halfway = 1 << (shift - 1);
        if (dropped > halfway || (dropped == halfway && (result & 1) == 1)) {
            result++;
        }
        return result;
    }

    /** float16 bits to float32; exact, since every float16 value is a float32 value. */
    public static float halfToFloat(short half) {
        int bits = half & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1f;
        int mantissa = bits & 0x3ff;

        if (exponent == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f80_0000 | (mantissa << MANTISSA_SHIFT));
        }
        if (exponent == 0) {
            // Zero or subnormal: mantissa × 2^-24, exact in float32 (at most 10 significant bits).
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        int floatExponent = exponent - HALF_EXPONENT_BIAS + FLOAT_EXPONENT_BIAS;
        return Float.intBitsToFloat(sign | (floatExponent << 23) | (mantissa << MANTISSA_SHIFT));
    }

    /** float32 to bfloat16 bits, rounding to nearest even. */
    public static short floatToBfloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7f80_0000) == 0x7f80_0000 && (bits & 0x7f_ffff) != 0) {
            // NaN: truncate rather than round (rounding could carry into the sign). If truncation
            // clears every payload bit the result would read as infinity, so set the quiet bit.
            int upper = bits >>> 16;
            return (short) ((upper & 0x7f) == 0 ? upper | 0x40 : upper);
        }
        // Adding 0x7fff rounds up exactly when the dropped half is above 0x8000, and the low kept
        // bit turns the tie case into round-half-to-even. Overflow carries into infinity.
        int roundingBias = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** bfloat16 bits to float32; exact. */
    public static float bfloat16ToFloat(short bfloat16) {
        return Float.intBitsToFloat((bfloat16 & 0xffff) << 16);
    }
}
