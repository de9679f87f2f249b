package dev.sdrt.exporter.weights;

import dev.sdrt.exporter.safetensors.SafeTensor;
import dev.sdrt.exporter.safetensors.TensorSource;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.TensorData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parameters read from a safetensors checkpoint. Tensors stay memory-mapped; conversion to the
 * export type happens when the graph is saved, one tensor at a time.
 */
public final class CheckpointWeights implements Weights {
    private final TensorSource source;
    private final String sourceName;
    private final Map<String, Long> used = new LinkedHashMap<>();

    public CheckpointWeights(TensorSource source, String sourceName) {
        this.source = source;
        this.sourceName = sourceName;
    }

    @Override
    public TensorData get(String name, long[] shape, DataType type, Init init) {
        if (!source.contains(name)) {
            throw new WeightsException("checkpoint " + sourceName + " has no tensor '" + name + "' (shape "
                    + Arrays.toString(shape) + ") that the model config calls for" + suggestion(name));
        }
        SafeTensor t;
        try {
            t = source.tensor(name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new WeightsException("checkpoint " + sourceName + ": tensor '" + name + "' has shape "
                    + Arrays.toString(t.shape()) + " but the model config implies " + Arrays.toString(shape));
        }
        used.put(name, t.elementCount());
        return TensorData.generated(type, shape, () -> TensorData.ofFloatsAs(type, shape, t.toFloatArray()).bytes());
    }

    private String suggestion(String name) {
        int dot = name.lastIndexOf('.', name.lastIndexOf('.') - 1);
        String prefix = dot > 0 ? name.substring(0, dot) : name;
        List<String> near = source.names().stream().filter(n -> n.startsWith(prefix)).limit(5).toList();
        return near.isEmpty() ? "" : "; tensors under '" + prefix + "': " + near;
    }

    @Override
    public Map<String, Long> used() {
        return java.util.Collections.unmodifiableMap(used);
    }

    @Override
    public List<String> unused() {
        List<String> out = new ArrayList<>();
        for (String n : source.names()) {
            if (!used.containsKey(n)) {
                out.add(n);
            }
        }
        return out;
    }
}
