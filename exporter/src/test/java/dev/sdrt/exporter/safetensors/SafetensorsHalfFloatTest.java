package dev.sdrt.exporter.safetensors;

import dev.sdrt.graphs.ir.Float16;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class SafetensorsHalfFloatTest {

    @Test
    void fp16KnownValues() {
        assertThat(Float16.toFloat((short) 0x3c00)).isEqualTo(1f);
        assertThat(Float16.toFloat((short) 0xc000)).isEqualTo(-2f);
        assertThat(Float16.toFloat((short) 0x3555)).isEqualTo(0.333251953125f);
        assertThat(Float16.toFloat((short) 0x7bff)).isEqualTo(65504f); // largest finite
        assertThat(Float16.toFloat((short) 0x0400)).isEqualTo(0x1p-14f); // smallest normal
        assertThat(Float16.toFloat((short) 0x03ff)).isEqualTo(0x3ffp-24f); // largest subnormal
        assertThat(Float16.toFloat((short) 0x0001)).isEqualTo(0x1p-24f); // smallest subnormal
        assertThat(Float16.toFloat((short) 0x8001)).isEqualTo(-0x1p-24f);
        assertThat(Float.floatToRawIntBits(Float16.toFloat((short) 0x0000))).isEqualTo(0);
        assertThat(Float.floatToRawIntBits(Float16.toFloat((short) 0x8000))).isEqualTo(0x80000000);
        assertThat(Float16.toFloat((short) 0x7c00)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Float16.toFloat((short) 0xfc00)).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(Float16.toFloat((short) 0x7e00)).isNaN();
        // A NaN keeps its payload and sign, as numpy's widening does.
        assertThat(Float.floatToRawIntBits(Float16.toFloat((short) 0xfc01))).isEqualTo(0xff802000);
    }

    /** Every finite fp16 against the defining formula (-1)^s * 2^(e-15) * (1 + m/1024), or 2^-14 * m/1024. */
    @Test
    void fp16EveryFiniteValueMatchesDefinition() {
        for (int bits = 0; bits <= 0xffff; bits++) {
            int exponent = (bits >>> 10) & 0x1f;
            if (exponent == 0x1f) {
                assertThat(Float.isFinite(Float16.toFloat((short) bits))).isFalse();
                continue;
            }
            int mantissa = bits & 0x3ff;
            double magnitude = exponent == 0
                    ? Math.scalb(mantissa / 1024.0, -14)
                    : Math.scalb(1 + mantissa / 1024.0, exponent - 15);
            double expected = (bits & 0x8000) != 0 ? -magnitude : magnitude;
            assertThat((double) Float16.toFloat((short) bits)).as("0x%04x", bits).isEqualTo(expected);
        }
    }

    @Test
    void bf16KnownValues() {
        assertThat(Float16.bfloat16ToFloat((short) 0x3f80)).isEqualTo(1f);
        assertThat(Float16.bfloat16ToFloat((short) 0x4049)).isEqualTo(3.140625f);
        assertThat(Float16.bfloat16ToFloat((short) 0xc2f7)).isEqualTo(-123.5f);
        assertThat(Float16.bfloat16ToFloat((short) 0x0001)).isEqualTo(0x1p-133f); // smallest subnormal
        assertThat(Float16.bfloat16ToFloat((short) 0x7f7f)).isEqualTo(0x1.fep127f); // largest finite
        assertThat(Float.floatToRawIntBits(Float16.bfloat16ToFloat((short) 0x8000))).isEqualTo(0x80000000);
        assertThat(Float16.bfloat16ToFloat((short) 0x7f80)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Float16.bfloat16ToFloat((short) 0xff80)).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(Float.floatToRawIntBits(Float16.bfloat16ToFloat((short) 0x7fc1))).isEqualTo(0x7fc10000);
    }
}
