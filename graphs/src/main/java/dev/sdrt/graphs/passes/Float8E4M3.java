package dev.sdrt.graphs.passes;

/** The FLOAT8E4M3FN codec: float to the byte ONNX stores (round to nearest even, saturating) and back. */
final class Float8E4M3 {
    private Float8E4M3() {
    }

    /** Rounds to the nearest FLOAT8E4M3FN (ties to even), saturating at ±448; NaN stays NaN. */
    static byte encode(float x) {
        if (Float.isNaN(x)) {
            return 0x7F;
        }
        int sign = (Float.floatToRawIntBits(x) >>> 31) << 7;
        double a = Math.abs((double) x);
        if (a >= 448) {
            return (byte) (sign | 0x7E);
        }
        int e = a == 0 ? -7 : Math.getExponent(a);
        if (e < -6) {
            // subnormals are multiples of 2^-9; a result of 8 is the smallest normal (exponent field 1, mantissa 0)
            return (byte) (sign | (int) Math.rint(a * 512.0));
        }
        long m = (long) Math.rint((a / Math.scalb(1.0, e) - 1) * 8);
        if (m == 8) {
            m = 0;
            e++;
        }
        int biased = e + 7;
        if (biased > 15 || biased == 15 && m == 7) {
            return (byte) (sign | 0x7E);
        }
        return (byte) (sign | biased << 3 | (int) m);
    }

    /** The value of a FLOAT8E4M3FN byte. */
    static float decode(byte b) {
        int v = b & 0xFF;
        int exp = (v >> 3) & 0xF;
        int m = v & 7;
        if (exp == 15 && m == 7) {
            return Float.NaN;
        }
        float mag = exp == 0 ? m * 0x1p-9f : (1 + m / 8f) * (float) Math.scalb(1.0, exp - 7);
        return (v & 0x80) != 0 ? -mag : mag;
    }
}
