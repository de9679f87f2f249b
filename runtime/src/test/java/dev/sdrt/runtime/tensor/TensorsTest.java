package dev.sdrt.runtime.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class TensorsTest {

    private static Tensor floats(float... values) {
        return Tensor.ofFloats(new long[] {values.length}, values);
    }

    @Test
    void isMaxAbsoluteErrorOverMaxReferenceMagnitude() {
        assertThat(Tensors.maxRelDiff(floats(1, 2, -4.5f), floats(1, 2.5f, -4))).isCloseTo(0.5 / 4, within(1e-12));
    }

    @Test
    void identicalTensorsDifferByZero() {
        assertThat(Tensors.maxRelDiff(floats(1, -2, Float.POSITIVE_INFINITY), floats(1, -2, Float.POSITIVE_INFINITY)))
                .isZero();
        assertThat(Tensors.maxRelDiff(floats(0, 0), floats(0, 0))).isZero();
    }

    @Test
    void anAllZeroReferenceMakesAnyDifferenceInfinite() {
        assertThat(Tensors.maxRelDiff(floats(0, 1e-20f), floats(0, 0))).isInfinite();
    }

    @Test
    void nanAnywhereGivesNan() {
        assertThat(Tensors.maxRelDiff(floats(1, Float.NaN), floats(1, 2))).isNaN();
        assertThat(Tensors.maxRelDiff(floats(1, 2), floats(Float.NaN, 2))).isNaN();
    }

    @Test
    void comparesAcrossFloatTypes() {
        Tensor reference = floats(0.1f, 1000f);
        Tensor half = reference.castTo(DType.FLOAT16);
        double diff = Tensors.maxRelDiff(half, reference);
        assertThat(diff).isGreaterThan(0).isLessThan(1e-3);
    }

    @Test
    void refusesDifferentShapesAndNonFloatTensors() {
        assertThatThrownBy(() -> Tensors.maxRelDiff(floats(1, 2), floats(1, 2, 3)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("different shapes: float32 [2] vs float32 [3]");
        assertThatThrownBy(() -> Tensors.maxRelDiff(
                        Tensor.ofLongs(new long[] {1}, new long[] {1}), Tensor.ofLongs(new long[] {1}, new long[] {1})))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("floating-point");
    }

    @Test
    void cosineOfDirectionsAndOfZeros() {
        float[] a = {1, 2, 3, 4};
        assertThat(Tensors.cosine(a, new float[] {2, 4, 6, 8})).isCloseTo(1, within(1e-12));
        assertThat(Tensors.cosine(a, new float[] {-1, -2, -3, -4})).isCloseTo(-1, within(1e-12));
        assertThat(Tensors.cosine(new float[] {1, 0}, new float[] {0, 1})).isZero();
        assertThat(Tensors.cosine(new float[2], new float[2])).isEqualTo(1);
        assertThat(Tensors.cosine(new float[2], new float[] {0, 1})).isZero();
        assertThatThrownBy(() -> Tensors.cosine(a, new float[3])).hasMessageContaining("different lengths");
    }
}
