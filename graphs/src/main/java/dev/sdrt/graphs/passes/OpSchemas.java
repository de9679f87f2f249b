package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.DataType;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.onnx.FormalParameterVector;
import org.bytedeco.onnx.OpSchema;
import org.bytedeco.onnx.OpSchemaRegistry;
import org.bytedeco.onnx.StringVector;
import org.bytedeco.onnx.TypeConstraintParamVector;

/**
 * Which inputs and outputs of an ONNX operator share a type, and which types each may take, read
 * from the ONNX schema registry (the native ONNX library). A precision pass needs both: Add's
 * inputs and output are one type T, Resize's scales are always float, LayerNormalization's mean
 * output is its own type U, Conv takes no bfloat16 before opset 22.
 */
final class OpSchemas {

    /**
     * One operator's formal parameters: the type string of each input and output ("T", or a
     * fixed "tensor(float)"), whether the last one repeats, and the types each parameter allows.
     */
    record Signature(List<String> inputs, boolean variadicInput, List<String> outputs, boolean variadicOutput,
            Map<String, Set<DataType>> allowed) {

        /** The type parameter (or fixed type string) of input {@code i}; null past the last. */
        String input(int i) {
            return at(inputs, variadicInput, i);
        }

        String output(int i) {
            return at(outputs, variadicOutput, i);
        }

        private static String at(List<String> params, boolean variadic, int i) {
            return i < params.size() ? params.get(i) : variadic && !params.isEmpty() ? params.get(params.size() - 1) : null;
        }

        boolean allows(String param, DataType type) {
            return allowed.getOrDefault(param, Set.of()).contains(type);
        }

        /** True for a parameter named in the type constraints ("T"), false for a fixed type ("tensor(float)"). */
        boolean isTypeParameter(String param) {
            return allowed.containsKey(param) && !param.startsWith("tensor(");
        }
    }

    private static final Map<String, Optional<Signature>> CACHE = new ConcurrentHashMap<>();
    private static final Map<String, DataType> TYPE_NAMES = new HashMap<>();

    static {
        TYPE_NAMES.put("tensor(float)", DataType.FLOAT);
        TYPE_NAMES.put("tensor(float16)", DataType.FLOAT16);
        TYPE_NAMES.put("tensor(bfloat16)", DataType.BFLOAT16);
        TYPE_NAMES.put("tensor(double)", DataType.DOUBLE);
        TYPE_NAMES.put("tensor(int64)", DataType.INT64);
        TYPE_NAMES.put("tensor(int32)", DataType.INT32);
        TYPE_NAMES.put("tensor(bool)", DataType.BOOL);
    }

    private OpSchemas() {
    }

    /** The signature of {@code opType} as of {@code opset} in the default domain, or null when ONNX has none. */
    static Signature of(String opType, long opset) {
        return CACHE.computeIfAbsent(opType + "@" + opset, key -> Optional.ofNullable(load(opType, (int) opset)))
                .orElse(null);
    }

    private static Signature load(String opType, int opset) {
        Loader.load(org.bytedeco.onnx.global.onnx.class);
        OpSchema schema = OpSchemaRegistry.Schema(opType, opset, "");
        if (schema == null || schema.isNull()) {
            return null;
        }
        Map<String, Set<DataType>> allowed = new HashMap<>();
        TypeConstraintParamVector constraints = schema.typeConstraintParams();
        for (long i = 0; i < constraints.size(); i++) {
            Set<DataType> types = EnumSet.noneOf(DataType.class);
            StringVector names = constraints.get(i).allowed_type_strs();
            for (long j = 0; j < names.size(); j++) {
                DataType t = TYPE_NAMES.get(names.get(j).getString());
                if (t != null) {
                    types.add(t);
                }
            }
            allowed.put(constraints.get(i).type_param_str().getString(), types);
        }
        List<String> inputs = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        boolean variadicIn = collect(schema.inputs(), inputs, allowed);
        boolean variadicOut = collect(schema.outputs(), outputs, allowed);
        return new Signature(inputs, variadicIn, outputs, variadicOut, allowed);
    }

    /** Adds each parameter's type string to {@code out}; fixed types allow just themselves. Returns whether the last is variadic. */
    private static boolean collect(FormalParameterVector params, List<String> out, Map<String, Set<DataType>> allowed) {
        boolean variadic = false;
        for (long i = 0; i < params.size(); i++) {
            String type = params.get(i).GetTypeStr().getString();
            out.add(type);
            DataType fixed = TYPE_NAMES.get(type);
            if (fixed != null) {
                allowed.put(type, EnumSet.of(fixed));
            }
            variadic = params.get(i).GetOption() == 2;
        }
        return variadic;
    }
}
