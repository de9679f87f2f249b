package dev.sdrt.enginebuilder;

import java.util.Arrays;

/** An engine input or output as recorded in the manifest: name, element type, declared shape (-1 dynamic). */
public record TensorDescription(String name, String dtype, long[] shape) {

    public TensorDescription {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TensorDescription o && name.equals(o.name) && dtype.equals(o.dtype)
                && Arrays.equals(shape, o.shape);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + dtype.hashCode()) + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + ": " + dtype + " " + Arrays.toString(shape);
    }
}
