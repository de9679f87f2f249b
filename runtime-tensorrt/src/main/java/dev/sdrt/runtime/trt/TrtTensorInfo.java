package dev.sdrt.runtime.trt;

import dev.sdrt.runtime.tensor.DType;
import java.util.Arrays;

/**
 * One input or output tensor of a TensorRT engine.
 *
 * @param name     the tensor's name (the ONNX graph input or output name)
 * @param input    true for an input, false for an output
 * @param dtype    its element type, or null when sdrt has no {@link DType} for it (FP8, INT4)
 * @param typeName the element type's name, always set ("float16", "fp8")
 * @param shape    its shape as the engine declares it, -1 for dimensions chosen at run time
 */
public record TrtTensorInfo(String name, boolean input, DType dtype, String typeName, long[] shape) {

    public TrtTensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** True when some dimension is only known once input shapes are set. */
    public boolean isDynamic() {
        return Arrays.stream(shape).anyMatch(d -> d < 0);
    }

    /** "input sample: float16 [2, 4, 64, 64]". */
    @Override
    public String toString() {
        return (input ? "input " : "output ") + name + ": " + typeName + " " + Arrays.toString(shape);
    }
}
