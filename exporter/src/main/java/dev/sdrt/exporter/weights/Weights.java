package dev.sdrt.exporter.weights;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.TensorData;
import java.util.Map;

/**
 * Where a graph builder gets its parameters, by diffusers/transformers parameter name. The same
 * builder code exports a real checkpoint or a randomly initialised model of any size.
 */
public interface Weights {

    /**
     * The parameter {@code name}, which must have exactly {@code shape}, delivered as {@code type}.
     * The returned data may be produced lazily (read and converted when the model is saved).
     *
     * @throws WeightsException when the parameter is missing or has another shape
     */
    TensorData get(String name, long[] shape, DataType type, Init init);

    /** Names and element counts of every parameter handed out so far (for reports and checks). */
    Map<String, Long> used();

    /** Parameters present in the source but never requested (empty for random weights). */
    java.util.List<String> unused();

    default long parameterCount() {
        return used().values().stream().mapToLong(Long::longValue).sum();
    }
}
