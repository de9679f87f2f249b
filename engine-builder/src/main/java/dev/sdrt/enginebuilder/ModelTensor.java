package dev.sdrt.enginebuilder;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A graph input or output as the ONNX file declares it.
 *
 * @param name     the tensor's name
 * @param dtype    its element type as sdrt names it ("float32", "float16", "int64", ...)
 * @param shape    its shape, -1 for a dynamic (symbolic or unknown) dimension
 * @param dimNames per dimension, the symbolic name ("batch") or "" for fixed and unnamed ones
 */
public record ModelTensor(String name, String dtype, long[] shape, List<String> dimNames) {

    public ModelTensor {
        shape = shape.clone();
        dimNames = dimNames == null || dimNames.isEmpty() ? blankNames(shape.length) : List.copyOf(dimNames);
        if (dimNames.size() != shape.length) {
            throw new IllegalArgumentException(name + ": " + dimNames.size() + " dimension names for rank " + shape.length);
        }
    }

    private static List<String> blankNames(int rank) {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < rank; i++) {
            names.add("");
        }
        return names;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public boolean isDynamic(int axis) {
        return shape[axis] < 0;
    }

    /** "float32 [batch, 4, 64, 64]": dynamic dimensions by name, "?" when unnamed. */
    public String describe() {
        StringBuilder text = new StringBuilder(dtype).append(" [");
        for (int axis = 0; axis < shape.length; axis++) {
            if (axis > 0) {
                text.append(", ");
            }
            text.append(isDynamic(axis) ? (dimNames.get(axis).isEmpty() ? "?" : dimNames.get(axis)) : Long.toString(shape[axis]));
        }
        return text.append(']').toString();
    }

    @Override
    public String toString() {
        return name + ": " + describe() + (Arrays.stream(shape).anyMatch(d -> d < 0) ? " (dynamic)" : "");
    }
}
