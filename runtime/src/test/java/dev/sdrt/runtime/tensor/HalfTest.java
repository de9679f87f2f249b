package dev.sdrt.runtime.tensor;

import static dev.sdrt.runtime.tensor.Half.bfloat16ToFloat;
import static dev.sdrt.runtime.tensor.Half.floatToBfloat16;
import static dev.sdrt.runtime.tensor.Half.floatToHalf;
import static dev.sdrt.runtime.tensor.Half.halfToFloat;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.reflect.Method;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class HalfTest {

    private static final int LARGEST_FINITE_HALF = 0x7bff;

    // ---- float16 ----

    @Test
    void everyHalfBitPatternSurvivesARoundTripThroughFloat() {
        for (int bits = 0; bits <= 0xffff; bits++) {
            short half = (short) bits;
            float value = halfToFloat(half);
            assertThat(floatToHalf(value) & 0xffff).as("pattern 0x%04x", bits).isEqualTo(bits);
            boolean halfIsNaN = (bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0;
            assertThat(Float.isNaN(value)).as("pattern 0x%04x", bits).isEqualTo(halfIsNaN);
        }
    }

    @Test
    void halfToFloatMatchesTheDefinitionOfBinary16() {
        for (int bits = 0; bits <= 0xffff; bits++) {
            int exponent = (bits >>> 10) & 0x1f;
            if (exponent == 0x1f) {
                continue;
            }
            int mantissa = bits & 0x3ff;
            double magnitude = exponent == 0
                    ? Math.scalb((double) mantissa, -24)
                    : Math.scalb(1 + mantissa / 1024.0, exponent - 15);
            double expected = (bits & 0x8000) != 0 ? -magnitude : magnitude;
            assertThat((double) halfToFloat((short) bits)).as("pattern 0x%04x", bits).isEqualTo(expected);
        }
        assertThat(halfToFloat((short) 0x8000)).isEqualTo(-0.0f);
        assertThat(Float.floatToRawIntBits(halfToFloat((short) 0x8000))).isEqualTo(0x8000_0000);
    }

    @Test
    void knownFloat16Values() {
        assertThat(floatToHalf(1.0f)).isEqualTo((short) 0x3c00);
        assertThat(floatToHalf(-2.0f)).isEqualTo((short) 0xc000);
        assertThat(floatToHalf(0.1f)).isEqualTo((short) 0x2e66);
        assertThat(floatToHalf(1 / 3f)).isEqualTo((short) 0x3555);
        assertThat(floatToHalf(65504f)).isEqualTo((short) 0x7bff);
        assertThat(floatToHalf(0x1p-14f)).as("smallest normal, 6.1e-5").isEqualTo((short) 0x0400);
        assertThat(floatToHalf(6.1035156e-5f)).isEqualTo((short) 0x0400);
        assertThat(floatToHalf(0x1p-24f)).as("smallest subnormal, 5.96e-8").isEqualTo((short) 0x0001);
        assertThat(floatToHalf(5.9604645e-8f)).isEqualTo((short) 0x0001);
        assertThat(floatToHalf(0x1.ff8p-15f)).as("largest subnormal").isEqualTo((short) 0x03ff);
        assertThat(floatToHalf(0.0f)).isEqualTo((short) 0x0000);
        assertThat(floatToHalf(-0.0f)).isEqualTo((short) 0x8000);
        assertThat(halfToFloat((short) 0x7bff)).isEqualTo(65504f);
        assertThat(halfToFloat((short) 0x0001)).isEqualTo(0x1p-24f);
    }

    @Test
    void overflowRoundsToInfinityFrom65520() {
        assertThat(floatToHalf(65520f)).as("halfway to 2^16 rounds to even: infinity").isEqualTo((short) 0x7c00);
        assertThat(floatToHalf(Math.nextDown(65520f))).isEqualTo((short) 0x7bff);
        assertThat(floatToHalf(-65520f)).isEqualTo((short) 0xfc00);
        assertThat(floatToHalf(1e10f)).isEqualTo((short) 0x7c00);
        assertThat(floatToHalf(Float.MAX_VALUE)).isEqualTo((short) 0x7c00);
        assertThat(floatToHalf(Float.POSITIVE_INFINITY)).isEqualTo((short) 0x7c00);
        assertThat(floatToHalf(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xfc00);
    }

    @Test
    void tiesRoundToEven() {
        assertThat(floatToHalf(1 + 0x1p-11f)).as("between 0x3c00 and 0x3c01").isEqualTo((short) 0x3c00);
        assertThat(floatToHalf(1 + 3 * 0x1p-11f)).as("between 0x3c01 and 0x3c02").isEqualTo((short) 0x3c02);
        assertThat(floatToHalf(Math.nextUp(1 + 0x1p-11f))).isEqualTo((short) 0x3c01);
        assertThat(floatToHalf(0x1p-25f)).as("half the smallest subnormal").isEqualTo((short) 0x0000);
        assertThat(floatToHalf(Math.nextUp(0x1p-25f))).isEqualTo((short) 0x0001);
        assertThat(floatToHalf(3 * 0x1p-25f)).as("between subnormals 1 and 2").isEqualTo((short) 0x0002);
        assertThat(floatToHalf(-0x1p-26f)).as("underflow keeps the sign").isEqualTo((short) 0x8000);
        assertThat(floatToHalf(Float.MIN_VALUE)).isEqualTo((short) 0x0000);
    }

    /** Every tie between two adjacent float16 values, and its neighbours one float32 ulp away. */
    @Test
    void everyMidpointBetweenAdjacentHalvesRoundsCorrectly() {
        for (int sign = 0; sign <= 0x8000; sign += 0x8000) {
            for (int lower = 0; lower <= LARGEST_FINITE_HALF; lower++) {
                int upper = lower + 1; // 0x7c00 (infinity) above the largest finite value
                float lowerValue = halfToFloat((short) lower);
                // Above the largest finite value, the next step would be 2^16.
                float upperValue = upper == 0x7c00 ? 65536f : halfToFloat((short) upper);
                float midpoint = (lowerValue + upperValue) / 2; // exact: needs 12 significant bits
                int even = (lower & 1) == 0 ? lower : upper;
                float signed = sign == 0 ? midpoint : -midpoint;
                assertThat(floatToHalf(signed) & 0xffff).as("midpoint above 0x%04x", lower).isEqualTo(sign | even);
                assertThat(floatToHalf(Math.nextDown(midpoint)) & 0xffff).isEqualTo(lower);
                assertThat(floatToHalf(Math.nextUp(midpoint)) & 0xffff).isEqualTo(upper);
            }
        }
    }

    /** Random floats against a brute-force nearest-value search over all float16 values. */
    @Test
    void randomFloatsRoundToTheNearestHalf() {
        SplittableRandom random = new SplittableRandom(2024);
        for (int i = 0; i < 1_000_000; i++) {
            float value;
            if (i % 2 == 0) {
                value = Float.intBitsToFloat(random.nextInt());
            } else {
                // Exponents around the float16 range, where rounding decisions happen.
                int exponent = 100 + random.nextInt(45);
                value = Float.intBitsToFloat((random.nextInt(2) << 31) | (exponent << 23) | random.nextInt(1 << 23));
            }
            if (Float.isNaN(value)) {
                assertThat(Float.isNaN(halfToFloat(floatToHalf(value)))).isTrue();
                continue;
            }
            assertThat(floatToHalf(value)).as("%s (0x%08x)", value, Float.floatToRawIntBits(value))
                    .isEqualTo(nearestHalf(value));
        }
    }

    /** Round to nearest even by search: positive float16 bit patterns are ordered like their values. */
    private static short nearestHalf(float value) {
        int sign = Float.floatToRawIntBits(value) < 0 ? 0x8000 : 0;
        double magnitude = Math.abs((double) value);
        if (magnitude >= 65520) {
            return (short) (sign | 0x7c00);
        }
        int low = 0;
        int high = LARGEST_FINITE_HALF;
        while (low < high) { // largest pattern whose value is <= magnitude
            int mid = (low + high + 1) >>> 1;
            if (halfToFloat((short) mid) <= magnitude) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        int upper = low + 1;
        double upperValue = upper == 0x7c00 ? 65536 : halfToFloat((short) upper);
        double below = magnitude - halfToFloat((short) low);
        double above = upperValue - magnitude;
        int nearest = below < above ? low : above < below ? upper : ((low & 1) == 0 ? low : upper);
        return (short) (sign | nearest);
    }

    @Test
    void nanStaysNanWithItsSign() {
        assertThat(floatToHalf(Float.NaN)).isEqualTo((short) 0x7e00);
        short fromLowPayload = floatToHalf(Float.intBitsToFloat(0x7f80_0001));
        assertThat(Float.isNaN(halfToFloat(fromLowPayload))).as("payload below float16 precision").isTrue();
        short negativeNaN = floatToHalf(Float.intBitsToFloat(0xffc0_0000));
        assertThat(negativeNaN & 0x8000).isEqualTo(0x8000);
        assertThat(Float.isNaN(halfToFloat(negativeNaN))).isTrue();
        assertThat(Float.isNaN(halfToFloat((short) 0x7c01))).as("signalling NaN").isTrue();
    }

    /** Java 20+ has Float.float16ToFloat / floatToFloat16; compare where this JVM has them. */
    @Test
    void agreesWithTheJdkWhenItHasFloat16() throws Exception {
        Method toFloat;
        Method toHalf;
        try {
            toFloat = Float.class.getMethod("float16ToFloat", short.class);
            toHalf = Float.class.getMethod("floatToFloat16", float.class);
        } catch (NoSuchMethodException e) {
            assumeTrue(false, "this JVM (" + Runtime.version() + ") has no Float.floatToFloat16");
            return;
        }
        for (int bits = 0; bits <= 0xffff; bits++) {
            float expected = (float) toFloat.invoke(null, (short) bits);
            float actual = halfToFloat((short) bits);
            if (Float.isNaN(expected)) {
                assertThat(actual).isNaN();
            } else {
                assertThat(Float.floatToRawIntBits(actual)).as("0x%04x", bits)
                        .isEqualTo(Float.floatToRawIntBits(expected));
            }
        }
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 300_000; i++) {
            float value = i % 2 == 0
                    ? Float.intBitsToFloat(random.nextInt())
                    : Float.intBitsToFloat((random.nextInt(2) << 31) | ((100 + random.nextInt(45)) << 23)
                            | random.nextInt(1 << 23));
            short expected = (short) toHalf.invoke(null, value);
            if (Float.isNaN(value)) {
                assertThat(halfToFloat(floatToHalf(value))).isNaN();
            } else {
                assertThat(floatToHalf(value)).as("%s", value).isEqualTo(expected);
            }
        }
    }

    // ---- bfloat16 ----

    @Test
    void everyBfloat16BitPatternSurvivesARoundTripThroughFloat() {
        for (int bits = 0; bits <= 0xffff; bits++) {
            float value = bfloat16ToFloat((short) bits);
            assertThat(Float.floatToRawIntBits(value)).isEqualTo(bits << 16);
            assertThat(floatToBfloat16(value) & 0xffff).as("pattern 0x%04x", bits).isEqualTo(bits);
        }
    }

    @Test
    void knownBfloat16Values() {
        assertThat(floatToBfloat16(1.0f)).isEqualTo((short) 0x3f80);
        assertThat(floatToBfloat16((float) Math.PI)).as("0x40490fdb rounds down").isEqualTo((short) 0x4049);
        assertThat(floatToBfloat16(-0.0f)).isEqualTo((short) 0x8000);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x3f80_8000))).as("tie to even").isEqualTo((short) 0x3f80);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x3f81_8000))).as("tie to even").isEqualTo((short) 0x3f82);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x3f80_8001))).isEqualTo((short) 0x3f81);
        assertThat(floatToBfloat16(Float.MAX_VALUE)).as("overflow").isEqualTo((short) 0x7f80);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x7f7f_7fff))).isEqualTo((short) 0x7f7f);
        assertThat(floatToBfloat16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xff80);
        assertThat(floatToBfloat16(Float.MIN_VALUE)).as("subnormal underflow").isEqualTo((short) 0x0000);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x0000_8001))).isEqualTo((short) 0x0001);
    }

    @Test
    void bfloat16NanStaysNan() {
        assertThat(floatToBfloat16(Float.NaN)).isEqualTo((short) 0x7fc0);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x7f80_0001))).as("low payload only").isEqualTo((short) 0x7fc0);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0xff81_0000))).as("signalling, negative").isEqualTo((short) 0xff81);
        assertThat(floatToBfloat16(Float.intBitsToFloat(0x7fff_ffff))).as("no carry into the sign")
                .isEqualTo((short) 0x7fff);
    }

    @Test
    void everyMidpointBetweenAdjacentBfloat16sRoundsToEven() {
        for (int sign = 0; sign <= 0x8000; sign += 0x8000) {
            for (int lower = 0; lower < 0x7f80; lower++) {
                int midpointBits = ((sign | lower) << 16) | 0x8000;
                int even = (lower & 1) == 0 ? lower : lower + 1;
                assertThat(floatToBfloat16(Float.intBitsToFloat(midpointBits)) & 0xffff).isEqualTo(sign | even);
                assertThat(floatToBfloat16(Float.intBitsToFloat(midpointBits - 1)) & 0xffff).isEqualTo(sign | lower);
                assertThat(floatToBfloat16(Float.intBitsToFloat(midpointBits + 1)) & 0xffff)
                        .isEqualTo(sign | (lower + 1));
            }
        }
    }
}
