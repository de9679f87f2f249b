package dev.sdrt.enginebuilder;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the engine builder needs to know about an ONNX file before TensorRT sees it: the graph's
 * inputs and outputs (for optimization profiles), the precision its weights are stored in (for the
 * manifest), its external data files (for the cache key) and every node's op type (so that a build
 * failure can name the ONNX node and op).
 *
 * @param precision     "fp32", "fp16", "bf16", with "+int8" / "+fp8" when the graph holds quantized
 *                      weights; null when the graph has no floating-point weights or inputs to tell
 * @param nodeOps       ONNX node name → op type
 */
public record OnnxSummary(List<ModelTensor> inputs, List<ModelTensor> outputs, String precision,
        List<Path> externalDataFiles, Map<String, String> nodeOps) {

    public OnnxSummary {
        inputs = List.copyOf(inputs);
        outputs = List.copyOf(outputs);
        externalDataFiles = List.copyOf(externalDataFiles);
        nodeOps = Map.copyOf(nodeOps);
    }

    /** Reads an ONNX file (external data is memory-mapped by {@link OnnxModel}, not read). */
    public static OnnxSummary read(Path onnx) throws IOException {
        return of(OnnxModel.load(onnx));
    }

    public static OnnxSummary of(OnnxModel model) {
        Graph graph = model.graph();
        Map<String, String> ops = new LinkedHashMap<>();
        for (Node node : graph.nodes()) {
            if (node.name() != null && !node.name().isEmpty()) {
                ops.put(node.name(), node.opType());
            }
        }
        return new OnnxSummary(tensors(graph.inputs()), tensors(graph.outputs()), precisionOf(graph),
                model.externalDataFiles(), ops);
    }

    private static List<ModelTensor> tensors(List<Value> values) {
        List<ModelTensor> list = new ArrayList<>();
        for (Value value : values) {
            if (value.isConstant()) {
                continue; // old exporters list initializers among the inputs; they are not fed
            }
            List<Dim> dims = value.shape() == null ? List.of() : value.shape().dims();
            long[] shape = new long[dims.size()];
            List<String> names = new ArrayList<>();
            for (int axis = 0; axis < dims.size(); axis++) {
                Dim dim = dims.get(axis);
                shape[axis] = dim.isFixed() ? dim.value() : -1;
                names.add(dim.isFixed() || dim.param() == null ? "" : dim.param());
            }
            list.add(new ModelTensor(value.name(), dtypeName(value.type()), shape, names));
        }
        return list;
    }

    /** sdrt's name for an ONNX element type ("float32", "float16", ...). */
    static String dtypeName(DataType type) {
        if (type == null) {
            return "unknown";
        }
        return switch (type) {
            case FLOAT -> "float32";
            case FLOAT16 -> "float16";
            case BFLOAT16 -> "bfloat16";
            case DOUBLE -> "float64";
            case FLOAT8E4M3FN -> "fp8e4m3";
            case FLOAT8E5M2 -> "fp8e5m2";
            default -> type.name().toLowerCase(Locale.ROOT);
        };
    }

    /**
     * The precision the graph computes in: the floating-point type holding most weight bytes (or, with
     * no float weights, the type of the float inputs), plus the quantized type when the graph
     * dequantizes int8 or fp8 weights. Strongly typed TensorRT engines run exactly these types.
     */
    static String precisionOf(Graph graph) {
        Map<DataType, Long> floatBytes = new EnumMap<>(DataType.class);
        boolean int8Weights = false;
        boolean fp8Weights = false;
        for (Value initializer : graph.initializers()) {
            TensorData data = initializer.constant();
            if (data == null) {
                continue;
            }
            DataType type = data.type();
            switch (type) {
                case FLOAT, FLOAT16, BFLOAT16 -> floatBytes.merge(type, data.byteSize(), Long::sum);
                case INT8, UINT8 -> int8Weights = true;
                case FLOAT8E4M3FN, FLOAT8E5M2 -> fp8Weights = true;
                default -> { }
            }
        }
        boolean dequantizes = graph.nodes().stream().anyMatch(n -> n.is("DequantizeLinear"));
        String base = floatBytes.entrySet().stream()
                .max(Map.Entry.comparingByValue())
                .map(e -> shortName(e.getKey()))
                .orElse(null);
        if (base == null) {
            base = graph.inputs().stream()
                    .map(Value::type)
                    .filter(t -> t == DataType.FLOAT || t == DataType.FLOAT16 || t == DataType.BFLOAT16)
                    .findFirst().map(OnnxSummary::shortName).orElse(null);
        }
        if (base == null) {
            return null;
        }
        if (dequantizes && fp8Weights) {
            return base + "+fp8";
        }
        if (dequantizes && int8Weights) {
            return base + "+int8";
        }
        return base;
    }

    private static String shortName(DataType type) {
        return switch (type) {
            case FLOAT16 -> "fp16";
            case BFLOAT16 -> "bf16";
            default -> "fp32";
        };
    }

    public ModelTensor input(String name) {
        return inputs.stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow(
                () -> new IllegalArgumentException("the model has no input '" + name + "'; inputs: " + inputs));
    }
}
