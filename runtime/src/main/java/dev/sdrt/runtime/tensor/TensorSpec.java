package dev.sdrt.runtime.tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a model expects for one named input or produces for one output: a dtype and a shape in which
 * dynamic dimensions are {@link #DYNAMIC} (-1), optionally named ("batch", "height") by the model.
 */
public final class TensorSpec {

    /** Shape entry of a dimension whose size is chosen at run time. */
    public static final long DYNAMIC = -1;

    private final String name;
    private final DType dtype;
    private final long[] shape;
    private final List<String> dimensionNames;

    /**
     * @param dimensionNames one entry per dimension: the symbolic name of a dynamic dimension, or ""
     *     for a fixed or unnamed one; an empty list when the model names none
     */
    public TensorSpec(String name, DType dtype, long[] shape, List<String> dimensionNames) {
        for (int axis = 0; axis < shape.length; axis++) {
            if (shape[axis] < DYNAMIC) {
                throw new IllegalArgumentException(String.format(
                        "%s: dimension %d of shape %s is %d; use -1 for a dynamic dimension",
                        name, axis, Arrays.toString(shape), shape[axis]));
            }
        }
        if (!dimensionNames.isEmpty() && dimensionNames.size() != shape.length) {
            throw new IllegalArgumentException(String.format(
                    "%s: %d dimension names for shape %s", name, dimensionNames.size(), Arrays.toString(shape)));
        }
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.dimensionNames = List.copyOf(dimensionNames);
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape, with {@link #DYNAMIC} for dynamic dimensions. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public boolean isDynamic(int axis) {
        return shape[axis] == DYNAMIC;
    }

    /** The model's name for a dimension; "" when the dimension is fixed or unnamed. */
    public String dimensionName(int axis) {
        return dimensionNames.isEmpty() ? "" : dimensionNames.get(axis);
    }

    /**
     * Notes in {@code sizes} the size each named dynamic dimension has in {@code shape} (the shape of
     * what is fed to this input), so outputs whose dimensions carry the same names can be sized
     * ({@link #shapeWith}) before the model runs.
     */
    public void bindDimensions(long[] shape, Map<String, Long> sizes) {
        for (int d = 0; d < rank() && d < shape.length; d++) {
            if (isDynamic(d) && !dimensionName(d).isEmpty()) {
                sizes.put(dimensionName(d), shape[d]);
            }
        }
    }

    /**
     * This shape with every dynamic dimension sized from {@code sizes} by its name; a dimension that
     * is unnamed or whose name has no size stays {@link #DYNAMIC}.
     */
    public long[] shapeWith(Map<String, Long> sizes) {
        long[] sized = shape();
        for (int d = 0; d < sized.length; d++) {
            if (isDynamic(d)) {
                sized[d] = sizes.getOrDefault(dimensionName(d), DYNAMIC);
            }
        }
        return sized;
    }

    /**
     * Why {@code tensor} cannot be fed as this input, or empty when it can: the dtype and rank must
     * match, fixed dimensions must be equal and dynamic ones positive.
     */
    public Optional<String> mismatch(Tensor tensor) {
        if (tensor.dtype() != dtype) {
            return Optional.of(String.format(
                    "input '%s' is %s, the model expects %s", name, tensor, describe()));
        }
        if (tensor.rank() != shape.length) {
            return Optional.of(String.format(
                    "input '%s' has rank %d (%s), the model expects rank %d: %s",
                    name, tensor.rank(), tensor, shape.length, describe()));
        }
        List<String> wrongDims = new ArrayList<>();
        for (int axis = 0; axis < shape.length; axis++) {
            long given = tensor.dim(axis);
            if (isDynamic(axis) && given <= 0) {
                wrongDims.add(String.format("dimension %d (%s) is %d but must be positive",
                        axis, dimensionLabel(axis), given));
            } else if (!isDynamic(axis) && given != shape[axis]) {
                wrongDims.add(String.format("dimension %d is %d but must be %d", axis, given, shape[axis]));
            }
        }
        if (!wrongDims.isEmpty()) {
            return Optional.of(String.format("input '%s' has shape %s, the model expects %s: %s",
                    name, Tensor.formatShape(tensor.shape()), describe(), String.join("; ", wrongDims)));
        }
        return Optional.empty();
    }

    /**
     * {@code tensor} as a feed for the input {@code input} of a model whose inputs are {@code inputs}:
     * cast to the dtype the model declares for it (fp16 exports take fp16 feeds), or as it is when
     * the dtypes agree. The shape is the model's to check when it runs.
     *
     * @param model names the model in the error
     * @throws IllegalStateException when the model has no input {@code input}
     */
    public static Tensor castToInput(Map<String, TensorSpec> inputs, String model, String input, Tensor tensor) {
        TensorSpec s = inputs.get(input);
        if (s == null) {
            throw new IllegalStateException(model + " has no input '" + input + "'; inputs: " + inputs.keySet());
        }
        return s.dtype() == tensor.dtype() ? tensor : tensor.castTo(s.dtype());
    }

    /** "float32 [batch, 4, 16, 16]": dynamic dimensions by name, or "?" when unnamed. */
    public String describe() {
        StringBuilder text = new StringBuilder(dtype.displayName()).append(" [");
        for (int axis = 0; axis < shape.length; axis++) {
            text.append(axis == 0 ? "" : ", ").append(isDynamic(axis) ? dimensionLabel(axis) : shape[axis]);
        }
        return text.append(']').toString();
    }

    private String dimensionLabel(int axis) {
        String dimensionName = dimensionName(axis);
        return dimensionName.isEmpty() ? "?" : dimensionName;
    }

    /** "sample: float32 [batch, 4, 16, 16]". */
    @Override
    public String toString() {
        return name + ": " + describe();
    }
}
