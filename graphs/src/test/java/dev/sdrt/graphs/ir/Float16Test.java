package dev.sdrt.graphs.ir;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class Float16Test {
    @Test
    void everyHalfRoundTripsExactly() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = Float16.toFloat((short) bits);
            short back = Float16.fromFloat(f);
            if (Float.isNaN(f)) {
                assertThat(Float.isNaN(Float16.toFloat(back))).isTrue();
            } else {
                assertThat(back & 0xffff).as("bits %04x", bits).isEqualTo(bits);
            }
        }
    }

    @Test
    void roundsToNearestEvenAndSaturatesToInfinity() {
        assertThat(Float16.toFloat(Float16.fromFloat(65504f))).isEqualTo(65504f);
        assertThat(Float16.toFloat(Float16.fromFloat(65520f))).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Float16.toFloat(Float16.fromFloat(65519f))).isEqualTo(65504f);
        // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0)
        assertThat(Float16.toFloat(Float16.fromFloat(1f + 0x1p-11f))).isEqualTo(1f);
        assertThat(Float16.toFloat(Float16.fromFloat(1f + 3 * 0x1p-11f))).isEqualTo(1f + 2 * 0x1p-10f);
        assertThat(Float16.toFloat(Float16.fromFloat(0x1p-24f))).isEqualTo(0x1p-24f);
        assertThat(Float16.toFloat(Float16.fromFloat(0x1p-26f))).isEqualTo(0f);
        assertThat(Float16.toFloat(Float16.fromFloat(-0f))).isEqualTo(-0f);
    }

    @Test
    void bfloat16RoundsToNearestEven() {
        assertThat(Float16.bfloat16ToFloat(Float16.bfloat16FromFloat(1f))).isEqualTo(1f);
        assertThat(Float16.bfloat16ToFloat(Float16.bfloat16FromFloat(1f + 0x1p-8f))).isEqualTo(1f);
        assertThat(Float16.bfloat16ToFloat(Float16.bfloat16FromFloat(1f + 3 * 0x1p-8f))).isEqualTo(1f + 0x1p-6f);
        assertThat(Float.isNaN(Float16.bfloat16ToFloat(Float16.bfloat16FromFloat(Float.NaN)))).isTrue();
    }
}
