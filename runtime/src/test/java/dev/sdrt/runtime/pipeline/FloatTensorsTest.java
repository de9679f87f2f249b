package dev.sdrt.runtime.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class FloatTensorsTest {
    private static Tensor t(long[] shape, float... v) {
        return Tensor.ofFloats(shape, v);
    }

    @Test
    void joinsAlongEachAxisInRowMajorOrder() {
        Tensor a = t(new long[] {1, 2, 2}, 1, 2, 3, 4);
        Tensor b = t(new long[] {1, 2, 1}, 5, 6);
        Tensor last = FloatTensors.concat(List.of(a, b), 2);
        assertThat(last.shape()).containsExactly(1, 2, 3);
        assertThat(last.toFloatArray()).containsExactly(1, 2, 5, 3, 4, 6);

        Tensor c = t(new long[] {1, 1, 2}, 7, 8);
        Tensor middle = FloatTensors.concat(List.of(a, c), 1);
        assertThat(middle.shape()).containsExactly(1, 3, 2);
        assertThat(middle.toFloatArray()).containsExactly(1, 2, 3, 4, 7, 8);

        Tensor batch = FloatTensors.concat(List.of(a, a), 0);
        assertThat(batch.shape()).containsExactly(2, 2, 2);
        assertThat(batch.toFloatArray()).containsExactly(1, 2, 3, 4, 1, 2, 3, 4);
    }

    @Test
    void zerosTakeTheShapeGiven() {
        Tensor a = t(new long[] {1, 2, 2}, 1, 2, 3, 4);
        Tensor padded = FloatTensors.concat(List.of(a, FloatTensors.zerosLike(a, 2, 3)), 2);
        assertThat(padded.toFloatArray()).containsExactly(1, 2, 0, 0, 0, 3, 4, 0, 0, 0);
        assertThat(FloatTensors.zerosLike(a).toFloatArray()).containsOnly(0f);
    }

    @Test
    void refusesMismatchedShapes() {
        Tensor a = t(new long[] {1, 2, 2}, 1, 2, 3, 4);
        Tensor b = t(new long[] {1, 3, 1}, 5, 6, 7);
        assertThatThrownBy(() -> FloatTensors.concat(List.of(a, b), 2)).hasMessageContaining("[1, 3, 1]");
        assertThatThrownBy(() -> FloatTensors.concat(List.of(a), 3)).hasMessageContaining("axis 3");
    }
}
