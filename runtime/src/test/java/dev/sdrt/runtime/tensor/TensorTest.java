package dev.sdrt.runtime.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class TensorTest {

    @Test
    void ofFloatsKeepsShapeAndValues() {
        Tensor tensor = Tensor.ofFloats(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
        assertThat(tensor.dtype()).isEqualTo(DType.FLOAT32);
        assertThat(tensor.shape()).containsExactly(2, 3);
        assertThat(tensor.rank()).isEqualTo(2);
        assertThat(tensor.dim(1)).isEqualTo(3);
        assertThat(tensor.numElements()).isEqualTo(6);
        assertThat(tensor.byteSize()).isEqualTo(24);
        assertThat(tensor.toFloatArray()).containsExactly(1, 2, 3, 4, 5, 6);
        assertThat(tensor).hasToString("float32 [2, 3]");
    }

    @Test
    void storageIsDirectAndLittleEndian() {
        Tensor tensor = Tensor.ofInts(new long[] {1}, new int[] {0x01020304});
        ByteBuffer buffer = tensor.buffer();
        assertThat(buffer.isDirect()).isTrue();
        assertThat(buffer.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(buffer.get(0)).isEqualTo((byte) 0x04);
        assertThat(buffer.get(3)).isEqualTo((byte) 0x01);
    }

    @Test
    void integerFactoriesAndToLongArray() {
        assertThat(Tensor.ofLongs(new long[] {3}, new long[] {Long.MIN_VALUE, 0, Long.MAX_VALUE}).toLongArray())
                .containsExactly(Long.MIN_VALUE, 0, Long.MAX_VALUE);
        Tensor ints = Tensor.ofInts(new long[] {2}, new int[] {-5, Integer.MAX_VALUE});
        assertThat(ints.dtype()).isEqualTo(DType.INT32);
        assertThat(ints.toLongArray()).containsExactly(-5, Integer.MAX_VALUE);
    }

    @Test
    void byteSizedTypesConvertToLongs() {
        Tensor int8 = Tensor.allocate(DType.INT8, 2);
        int8.buffer().put(new byte[] {-128, 127});
        assertThat(int8.toLongArray()).containsExactly(-128, 127);

        Tensor uint8 = Tensor.allocate(DType.UINT8, 2);
        uint8.buffer().put(new byte[] {(byte) 255, 1});
        assertThat(uint8.toLongArray()).containsExactly(255, 1);

        Tensor bool = Tensor.allocate(DType.BOOL, 3);
        bool.buffer().put(new byte[] {1, 0, 1});
        assertThat(bool.toLongArray()).containsExactly(1, 0, 1);
    }

    @Test
    void zerosAndScalarsAndEmptyTensors() {
        assertThat(Tensor.zeros(DType.FLOAT16, 2, 2).toFloatArray()).containsOnly(0f);
        Tensor scalar = Tensor.ofFloats(new long[0], new float[] {42});
        assertThat(scalar.numElements()).isEqualTo(1);
        assertThat(scalar).hasToString("float32 []");
        Tensor empty = Tensor.zeros(DType.INT64, 0, 5);
        assertThat(empty.numElements()).isZero();
        assertThat(empty.toLongArray()).isEmpty();
    }

    @Test
    void writesThroughTheBufferAreVisibleButItsPositionIsNot() {
        Tensor tensor = Tensor.allocate(DType.FLOAT32, 2);
        ByteBuffer view = tensor.buffer();
        view.putFloat(1.5f).putFloat(-2f);
        assertThat(tensor.toFloatArray()).containsExactly(1.5f, -2f);
        assertThat(tensor.buffer().position()).isZero();
    }

    @Test
    void shapeIsCopiedInAndOut() {
        long[] shape = {2, 2};
        Tensor tensor = Tensor.zeros(DType.FLOAT32, shape);
        shape[0] = 7;
        tensor.shape()[1] = 9;
        assertThat(tensor.shape()).containsExactly(2, 2);
    }

    @Test
    void rejectsAValueCountThatDoesNotMatchTheShape() {
        assertThatThrownBy(() -> Tensor.ofFloats(new long[] {2, 3}, new float[5]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("shape [2, 3] has 6 elements but 5 values were given");
        assertThatThrownBy(() -> Tensor.ofLongs(new long[] {4}, new long[3]))
                .hasMessageContaining("4 elements but 3 values");
        assertThatThrownBy(() -> Tensor.ofInts(new long[] {}, new int[2]))
                .hasMessageContaining("1 elements but 2 values");
    }

    @Test
    void rejectsNegativeDimensions() {
        assertThatThrownBy(() -> Tensor.zeros(DType.FLOAT32, 2, -1, 3))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("shape [2, -1, 3] has a negative dimension -1 at axis 1");
    }

    @Test
    void rejectsShapesWhoseElementCountOverflows() {
        assertThatThrownBy(() -> Tensor.numElements(new long[] {1L << 40, 1L << 40}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("more elements than a long can count");
    }

    @Test
    void rejectsTensorsLargerThanOneBuffer() {
        assertThatThrownBy(() -> Tensor.allocate(DType.FLOAT32, 1L << 30))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("float32 [1073741824]")
                .hasMessageContaining("2 GiB");
    }

    @Test
    void copyOfCopiesExactlyTheRemainingBytes() {
        ByteBuffer source = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        source.putInt(99).putFloat(1f).putFloat(2f);
        source.position(4);
        Tensor tensor = Tensor.copyOf(DType.FLOAT32, new long[] {2}, source);
        assertThat(tensor.toFloatArray()).containsExactly(1f, 2f);
        assertThat(source.position()).as("source untouched").isEqualTo(4);
        source.putFloat(4, 7f);
        assertThat(tensor.toFloatArray()).as("a copy, not a view").containsExactly(1f, 2f);

        assertThatThrownBy(() -> Tensor.copyOf(DType.FLOAT32, new long[] {3}, ByteBuffer.allocate(8)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("float32 [3] needs 12 bytes, got 8");
    }

    @Test
    void toFloatArrayConvertsHalfTypesExactly() {
        Tensor half = Tensor.allocate(DType.FLOAT16, 3);
        half.buffer().putShort((short) 0x3c00).putShort((short) 0x7bff).putShort((short) 0x0001);
        assertThat(half.toFloatArray()).containsExactly(1f, 65504f, 0x1p-24f);

        Tensor bf16 = Tensor.allocate(DType.BFLOAT16, 2);
        bf16.buffer().putShort((short) 0x4049).putShort((short) 0xbf80);
        assertThat(bf16.toFloatArray()).containsExactly(3.140625f, -1f);

        Tensor float64 = Tensor.allocate(DType.FLOAT64, 1);
        float64.buffer().putDouble(0.1);
        assertThat(float64.toFloatArray()).containsExactly(0.1f);
    }

    @Test
    void arrayAccessorsRefuseTheOtherKindOfType() {
        assertThatThrownBy(() -> Tensor.zeros(DType.INT64, 2).toFloatArray())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("int64 [2]");
        assertThatThrownBy(() -> Tensor.zeros(DType.FLOAT16, 2).toLongArray())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("float16 [2]");
    }

    @Test
    void castBetweenFloatTypesRoundsToNearestEven() {
        float[] values = {1f, 1 + 0x1p-11f, 65520f, 0.1f, -0x1p-25f, Float.NaN, (float) Math.PI};
        Tensor source = Tensor.ofFloats(new long[] {values.length}, values);

        Tensor half = source.castTo(DType.FLOAT16);
        assertThat(half.dtype()).isEqualTo(DType.FLOAT16);
        assertThat(half.shape()).containsExactly(values.length);
        for (int i = 0; i < values.length; i++) {
            assertThat(half.buffer().getShort(2 * i)).isEqualTo(Half.floatToHalf(values[i]));
        }
        Tensor bf16 = source.castTo(DType.BFLOAT16);
        for (int i = 0; i < values.length; i++) {
            assertThat(bf16.buffer().getShort(2 * i)).isEqualTo(Half.floatToBfloat16(values[i]));
        }
        float[] backFromHalf = half.castTo(DType.FLOAT32).toFloatArray();
        assertThat(backFromHalf[0]).isEqualTo(1f);
        assertThat(backFromHalf[1]).isEqualTo(1f);
        assertThat(backFromHalf[2]).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(backFromHalf[5]).isNaN();

        Tensor bf16FromHalf = half.castTo(DType.BFLOAT16);
        assertThat(bf16FromHalf.toFloatArray()[0]).isEqualTo(1f);
    }

    @Test
    void castToAndFromFloat64() {
        Tensor doubles = Tensor.allocate(DType.FLOAT64, 2);
        doubles.buffer().putDouble(0.1).putDouble(1e300);
        assertThat(doubles.castTo(DType.FLOAT32).toFloatArray()).containsExactly(0.1f, Float.POSITIVE_INFINITY);

        Tensor widened = Tensor.ofFloats(new long[] {1}, new float[] {0.1f}).castTo(DType.FLOAT64);
        assertThat(widened.buffer().getDouble(0)).isEqualTo((double) 0.1f);
        Tensor fromHalf = Tensor.ofFloats(new long[] {1}, new float[] {0.5f}).castTo(DType.FLOAT16).castTo(DType.FLOAT64);
        assertThat(fromHalf.buffer().getDouble(0)).isEqualTo(0.5);

        assertThatThrownBy(() -> doubles.castTo(DType.FLOAT16))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cannot cast float64 to float16");
    }

    @Test
    void castBetweenInt32AndInt64() {
        Tensor ints = Tensor.ofInts(new long[] {2}, new int[] {-1, Integer.MAX_VALUE});
        Tensor longs = ints.castTo(DType.INT64);
        assertThat(longs.dtype()).isEqualTo(DType.INT64);
        assertThat(longs.toLongArray()).containsExactly(-1, Integer.MAX_VALUE);
        assertThat(longs.castTo(DType.INT32).toLongArray()).containsExactly(-1, Integer.MAX_VALUE);

        Tensor tooBig = Tensor.ofLongs(new long[] {2}, new long[] {0, 3_000_000_000L});
        assertThatThrownBy(() -> tooBig.castTo(DType.INT32))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("value 3000000000 at flat index 1");
    }

    @Test
    void castRefusesUnsupportedPairs() {
        assertThatThrownBy(() -> Tensor.zeros(DType.INT64, 1).castTo(DType.FLOAT32))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cannot cast int64 to float32");
        assertThatThrownBy(() -> Tensor.zeros(DType.FLOAT32, 1).castTo(DType.BOOL))
                .hasMessageContaining("cannot cast float32 to bool");
    }

    @Test
    void castToTheSameTypeIsAnIndependentCopy() {
        Tensor source = Tensor.ofFloats(new long[] {2}, new float[] {1, 2});
        Tensor copy = source.castTo(DType.FLOAT32);
        source.buffer().putFloat(0, 9f);
        assertThat(copy.toFloatArray()).containsExactly(1, 2);
    }

    @Test
    void reshapeSharesContentsAndInfersOneDimension() {
        Tensor tensor = Tensor.ofFloats(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
        Tensor reshaped = tensor.reshape(3, -1);
        assertThat(reshaped.shape()).containsExactly(3, 2);
        assertThat(tensor.reshape(6).shape()).containsExactly(6);
        assertThat(tensor.reshape(1, 2, 1, 3).shape()).containsExactly(1, 2, 1, 3);
        tensor.buffer().putFloat(0, 10f);
        assertThat(reshaped.toFloatArray()[0]).as("shares contents").isEqualTo(10f);
        assertThat(tensor.shape()).containsExactly(2, 3);
    }

    @Test
    void reshapeRejectsMismatchedCounts() {
        Tensor tensor = Tensor.zeros(DType.FLOAT32, 2, 3);
        assertThatThrownBy(() -> tensor.reshape(4, 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("cannot reshape float32 [2, 3] (6 elements) to [4, 2] (8 elements)");
        assertThatThrownBy(() -> tensor.reshape(-1, -1))
                .hasMessageContaining("only one dimension can be -1");
        assertThatThrownBy(() -> tensor.reshape(4, -1))
                .hasMessageContaining("no size for the -1 dimension fits");
        assertThatThrownBy(() -> tensor.reshape(0, -1))
                .hasMessageContaining("no size for the -1 dimension fits");
        assertThatThrownBy(() -> tensor.reshape(-2, 3))
                .hasMessageContaining("negative dimension");
    }
}
