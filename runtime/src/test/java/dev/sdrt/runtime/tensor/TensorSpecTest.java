package dev.sdrt.runtime.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TensorSpecTest {

    private final TensorSpec sample =
            new TensorSpec("sample", DType.FLOAT32, new long[] {-1, 4, -1, 16}, List.of("batch", "", "", ""));

    @Test
    void describesDynamicDimensionsByNameOrQuestionMark() {
        assertThat(sample.describe()).isEqualTo("float32 [batch, 4, ?, 16]");
        assertThat(sample).hasToString("sample: float32 [batch, 4, ?, 16]");
        assertThat(sample.isDynamic(0)).isTrue();
        assertThat(sample.isDynamic(1)).isFalse();
        assertThat(sample.dimensionName(0)).isEqualTo("batch");
        assertThat(new TensorSpec("t", DType.INT64, new long[] {2}, List.of()).dimensionName(0)).isEmpty();
    }

    @Test
    void acceptsAnyPositiveSizeForDynamicDimensions() {
        assertThat(sample.mismatch(Tensor.zeros(DType.FLOAT32, 1, 4, 3, 16))).isEmpty();
        assertThat(sample.mismatch(Tensor.zeros(DType.FLOAT32, 7, 4, 1, 16))).isEmpty();
    }

    @Test
    void reportsEachKindOfMismatch() {
        assertThat(sample.mismatch(Tensor.zeros(DType.FLOAT16, 1, 4, 3, 16))).contains(
                "input 'sample' is float16 [1, 4, 3, 16], the model expects float32 [batch, 4, ?, 16]");
        assertThat(sample.mismatch(Tensor.zeros(DType.FLOAT32, 4, 3, 16))).contains(
                "input 'sample' has rank 3 (float32 [4, 3, 16]), the model expects rank 4: float32 [batch, 4, ?, 16]");
        assertThat(sample.mismatch(Tensor.zeros(DType.FLOAT32, 0, 5, 3, 16))).contains(
                "input 'sample' has shape [0, 5, 3, 16], the model expects float32 [batch, 4, ?, 16]: "
                        + "dimension 0 (batch) is 0 but must be positive; dimension 1 is 5 but must be 4");
    }

    @Test
    void validatesItsOwnShape() {
        assertThatThrownBy(() -> new TensorSpec("x", DType.FLOAT32, new long[] {-2}, List.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("use -1 for a dynamic dimension");
        assertThatThrownBy(() -> new TensorSpec("x", DType.FLOAT32, new long[] {1, 2}, List.of("a")))
                .hasMessageContaining("1 dimension names for shape [1, 2]");
    }

    @Test
    void outputsAreSizedByTheNamesTheirInputsBound() {
        TensorSpec sample = new TensorSpec("sample", DType.FLOAT32, new long[] {-1, 4, -1, -1}, List.of("batch", "", "height", ""));
        Map<String, Long> sizes = new HashMap<>();
        sample.bindDimensions(new long[] {2, 4, 64, 48}, sizes);
        assertThat(sizes).containsOnly(Map.entry("batch", 2L), Map.entry("height", 64L));

        TensorSpec out = new TensorSpec("out", DType.FLOAT32, new long[] {-1, 8, -1, -1}, List.of("batch", "", "height", "width"));
        assertThat(out.shapeWith(sizes)).as("width was never bound").containsExactly(2, 8, 64, TensorSpec.DYNAMIC);
        assertThat(out.shape()).as("the spec itself is unchanged").containsExactly(-1, 8, -1, -1);
    }

    @Test
    void castToInputCastsToTheDeclaredDtypeAndNamesTheModelWhenTheInputIsMissing() {
        Map<String, TensorSpec> inputs = Map.of("sample",
                new TensorSpec("sample", DType.FLOAT16, new long[] {-1, 4, -1, 16}, List.of()));
        Tensor floats = Tensor.zeros(DType.FLOAT32, 1, 4, 3, 16);
        assertThat(TensorSpec.castToInput(inputs, "unet.onnx", "sample", floats).dtype()).isEqualTo(DType.FLOAT16);
        Tensor halves = Tensor.zeros(DType.FLOAT16, 1, 4, 3, 16);
        assertThat(TensorSpec.castToInput(inputs, "unet.onnx", "sample", halves)).as("already the dtype").isSameAs(halves);
        assertThatThrownBy(() -> TensorSpec.castToInput(inputs, "unet.onnx", "timestep", floats))
                .isInstanceOf(IllegalStateException.class).hasMessage("unet.onnx has no input 'timestep'; inputs: [sample]");
    }
}
