package dev.sdrt.exporter.builder;

import dev.sdrt.exporter.weights.Init;
import dev.sdrt.exporter.weights.Weights;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds an ONNX graph the way a diffusers module tree runs: {@link #scope} follows the module path,
 * so parameters get their checkpoint names ({@code down_blocks.0.resnets.0.conv1.weight}) and nodes
 * get path names ({@code /down_blocks.0/resnets.0/conv1/Conv}).
 *
 * <p>Every floating-point value is of the export type ({@link #dtype()}); normalization statistics
 * and softmax run in float32 when exporting fp16/bf16, with casts around them, so the graph is
 * correct as typed.
 */
public final class GraphBuilder {
    public static final long OPSET = 17;
    /** The names {@link #activation} knows, so that a config can be checked before a graph is built. */
    public static final List<String> ACTIVATIONS = List.of("silu", "swish", "gelu", "gelu_pytorch_tanh",
            "gelu-approximate", "gelu_tanh", "quick_gelu", "relu");

    private final Graph graph;
    private final OpEmitter ops;
    private final Weights weights;
    private final DataType dtype;
    private final Deque<String> path = new ArrayDeque<>();
    private final Map<String, Value> sharedConstants = new LinkedHashMap<>();

    public GraphBuilder(String graphName, Weights weights, DataType dtype) {
        if (dtype != DataType.FLOAT && dtype != DataType.FLOAT16 && dtype != DataType.BFLOAT16) {
            throw new IllegalArgumentException("export precision must be fp32, fp16 or bf16, not " + dtype);
        }
        this.graph = new Graph(graphName);
        this.ops = new OpEmitter(graph, OPSET, (node, values) -> longs(values));
        this.weights = weights;
        this.dtype = dtype;
    }

    public Graph graph() {
        return graph;
    }

    public DataType dtype() {
        return dtype;
    }

    public Weights weights() {
        return weights;
    }

    /** Wraps the graph in a model with sdrt's opset and producer. */
    public OnnxModel toModel() {
        graph.toposort();
        OnnxModel model = new OnnxModel(graph, OPSET);
        model.setProducer("sdrt", "0.1");
        return model;
    }

    // ---------------- scopes and names ----------------

    /** Enters submodule {@code name} (a dotted path like "down_blocks.0" is fine); close to leave. */
    public Scope scope(String name) {
        path.addLast(name);
        return () -> path.removeLast();
    }

    /** A scope whose close does not throw. */
    public interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    /** Dotted parameter name of {@code local} in the current module. */
    public String paramName(String local) {
        return path.isEmpty() ? local : String.join(".", path) + "." + local;
    }

    private String nodeName(String opType) {
        return "/" + String.join("/", path) + (path.isEmpty() ? "" : "/") + opType;
    }

    // ---------------- inputs, outputs, parameters, constants ----------------

    public Value input(String name, DataType type, Object... dims) {
        return graph.addInput(name, type, Shape.mixed(dims));
    }

    /** Declares {@code v} as graph output {@code name} of the given type and shape (numbers or symbolic names). */
    public void output(String name, Value v, DataType type, Object... dims) {
        ops.output(name, v, type, Shape.mixed(dims), nodeName("Identity"));
    }

    /** Parameter {@code local} of the current module, in the export type. */
    public Value param(String local, Init init, long... shape) {
        String name = paramName(local);
        return graph.addInitializer(name, weights.get(name, shape, dtype, init));
    }

    /** A parameter stored transposed ([a,b] in the checkpoint, [b,a] in the graph), as MatMul wants it. */
    public Value paramTransposed(String local, Init init, long rows, long cols) {
        String name = paramName(local);
        TensorData src = weights.get(name, new long[] {rows, cols}, dtype, init);
        TensorData t = TensorData.generated(dtype, new long[] {cols, rows},
                () -> transpose(src.bytes(), (int) rows, (int) cols, dtype.byteSize()));
        return graph.addInitializer(name, t);
    }

    private static ByteBuffer transpose(ByteBuffer m, int rows, int cols, int elem) {
        ByteBuffer out = ByteBuffer.allocate(rows * cols * elem).order(ByteOrder.LITTLE_ENDIAN);
        byte[] src = new byte[m.remaining()];
        m.get(src);
        byte[] dst = out.array();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                System.arraycopy(src, (r * cols + c) * elem, dst, (c * rows + r) * elem, elem);
            }
        }
        return out;
    }

    /** A scalar of the export type (shared between uses). */
    public Value scalar(double v) {
        return scalar(v, dtype);
    }

    public Value scalar(double v, DataType type) {
        String key = type + ":" + v;
        return sharedConstants.computeIfAbsent(key, k -> graph.constant("const_" + sanitize(v),
                TensorData.ofFloatsAs(type, new long[0], new float[] {(float) v})));
    }

    /** A constant float tensor of the export type. */
    public Value floats(String name, long[] dims, float[] values) {
        return graph.constant(name, TensorData.ofFloatsAs(dtype, dims, values));
    }

    /** An INT64 vector constant (shapes, axes, starts/ends), shared between uses. */
    public Value longs(long... values) {
        String key = "i64:" + java.util.Arrays.toString(values);
        return sharedConstants.computeIfAbsent(key, k -> graph.constant("const_i64", TensorData.vector(values)));
    }

    private static String sanitize(double v) {
        return Double.toString(v).replace('.', '_').replace('-', 'm');
    }

    // ---------------- generic ops ----------------

    public Value op(String opType, Value... inputs) {
        return op(opType, Map.of(), inputs);
    }

    public Value op(String opType, Map<String, Object> attrs, Value... inputs) {
        return ops.op(opType, nodeName(opType), List.of(inputs), attrs);
    }

    public List<Value> multi(String opType, int outputs, Map<String, Object> attrs, Value... inputs) {
        return ops.node(opType, nodeName(opType), List.of(inputs), attrs, outputs).outputs();
    }

    public Value add(Value a, Value b) {
        return op("Add", a, b);
    }

    public Value sub(Value a, Value b) {
        return op("Sub", a, b);
    }

    public Value mul(Value a, Value b) {
        return op("Mul", a, b);
    }

    public Value div(Value a, Value b) {
        return op("Div", a, b);
    }

    public Value matmul(Value a, Value b) {
        return op("MatMul", a, b);
    }

    public Value cast(Value x, DataType to) {
        return op("Cast", Map.of("to", (long) to.onnxCode()), x);
    }

    public Value reshape(Value x, long... shape) {
        return op("Reshape", x, longs(shape));
    }

    public Value reshape(Value x, Value shape) {
        return op("Reshape", x, shape);
    }

    public Value transpose(Value x, long... perm) {
        return op("Transpose", Map.of("perm", perm), x);
    }

    public Value concat(long axis, Value... parts) {
        return op("Concat", Map.of("axis", axis), parts);
    }

    public List<Value> split(Value x, long axis, long... sizes) {
        return ops.split(nodeName("Split"), x, axis, sizes);
    }

    public Value slice(Value x, long axis, long start, long end) {
        return op("Slice", x, longs(start), longs(end), longs(axis));
    }

    public Value unsqueeze(Value x, long... axes) {
        return ops.unsqueeze(nodeName("Unsqueeze"), x, axes);
    }

    public Value shapeOf(Value x) {
        return op("Shape", x);
    }

    public Value softmax(Value x, long axis) {
        if (dtype == DataType.FLOAT) {
            return op("Softmax", Map.of("axis", axis), x);
        }
        return cast(op("Softmax", Map.of("axis", axis), cast(x, DataType.FLOAT)), dtype);
    }

    // ---------------- activations ----------------

    public Value silu(Value x) {
        return mul(x, op("Sigmoid", x));
    }

    /** Exact GELU: x/2 * (1 + erf(x/sqrt(2))). */
    public Value gelu(Value x) {
        Value erf = op("Erf", div(x, scalar(Math.sqrt(2))));
        return mul(mul(x, add(erf, scalar(1))), scalar(0.5));
    }

    /** GELU, tanh approximation: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))). */
    public Value geluTanh(Value x) {
        Value cube = mul(mul(x, x), x);
        Value inner = mul(add(x, mul(cube, scalar(0.044715))), scalar(Math.sqrt(2 / Math.PI)));
        return mul(mul(x, add(op("Tanh", inner), scalar(1))), scalar(0.5));
    }

    /** CLIP's quick GELU: x * sigmoid(1.702 x). */
    public Value quickGelu(Value x) {
        return mul(x, op("Sigmoid", mul(x, scalar(1.702))));
    }

    public Value activation(String name, Value x) {
        return switch (name) {
            case "silu", "swish" -> silu(x);
            case "gelu" -> gelu(x);
            case "gelu_pytorch_tanh", "gelu-approximate", "gelu_tanh" -> geluTanh(x);
            case "quick_gelu" -> quickGelu(x);
            case "relu" -> op("Relu", x);
            default -> throw new IllegalArgumentException("unsupported activation function '" + name + "'");
        };
    }

    // ---------------- layers (each inside the caller's module scope) ----------------

    /** torch.nn.Linear named {@code module}: x [..., in] -> [..., out]. */
    public Value linear(String module, Value x, long in, long out, boolean bias) {
        try (Scope s = scope(module)) {
            Value y = matmul(x, paramTransposed("weight", Init.weight(in), out, in));
            return bias ? add(y, param("bias", Init.BIAS, out)) : y;
        }
    }

    /** torch.nn.Embedding named {@code module}: integer ids [...] -> rows of its table [..., dim]. */
    public Value embedding(String module, Value ids, long count, long dim) {
        try (Scope s = scope(module)) {
            return op("Gather", param("weight", Init.EMBEDDING, count, dim), ids);
        }
    }

    /** torch.nn.Conv2d named {@code module} on NCHW input. */
    public Value conv2d(String module, Value x, long in, long out, long kernel, long stride, long padding, boolean bias) {
        return conv2d(module, x, in, out, kernel, stride, new long[] {padding, padding, padding, padding}, bias);
    }

    /**
     * torch.nn.Conv2d named {@code module} with zero padding given per side in ONNX order {@code [top, left,
     * bottom, right]}: an asymmetric {@code F.pad} followed by an unpadded conv folds into this.
     */
    public Value conv2d(String module, Value x, long in, long out, long kernel, long stride, long[] pads, boolean bias) {
        try (Scope s = scope(module)) {
            Value w = param("weight", Init.weight(in * kernel * kernel), out, in, kernel, kernel);
            Map<String, Object> attrs = Map.of("kernel_shape", new long[] {kernel, kernel},
                    "strides", new long[] {stride, stride}, "pads", pads.clone(),
                    "dilations", new long[] {1, 1}, "group", 1L);
            return bias ? op("Conv", attrs, x, w, param("bias", Init.BIAS, out)) : op("Conv", attrs, x, w);
        }
    }

    /**
     * Nearest-neighbour upsampling of NCHW input by an integer {@code factor}, as torch's {@code
     * F.interpolate(scale_factor=factor, mode="nearest")}: output pixel i reads input pixel floor(i / factor).
     */
    public Value upsampleNearest(Value x, long factor) {
        Value scales = sharedConstants.computeIfAbsent("resize_scales:" + factor, k -> graph.constant("resize_scales",
                TensorData.ofFloats(new long[] {4}, 1f, 1f, factor, factor)));
        Map<String, Object> attrs = Map.of("mode", "nearest", "coordinate_transformation_mode", "asymmetric",
                "nearest_mode", "floor");
        // Resize's second input (roi) is omitted: an empty name in ONNX, null here
        Node n = graph.addNode("Resize", nodeName("Resize"), java.util.Arrays.asList(x, null, scales), 1);
        attrs.forEach(n::setAttr);
        return n.output(0);
    }

    /**
     * torch.nn.GroupNorm named {@code module} on [N, C, ...]: statistics per group via
     * InstanceNormalization over [N, G, -1] (computed in float32), then the per-channel affine.
     */
    public Value groupNorm(String module, Value x, long channels, long groups, double eps, boolean affine) {
        try (Scope s = scope(module)) {
            Value original = shapeOf(x);
            Value grouped = reshape(castToFloat(x), 0, groups, -1);
            float[] ones = new float[(int) groups];
            java.util.Arrays.fill(ones, 1f);
            Value scale = graph.constant("groupnorm_ones_" + groups, TensorData.ofFloats(new long[] {groups}, ones));
            Value shift = graph.constant("groupnorm_zeros_" + groups, TensorData.ofFloats(new long[] {groups}, new float[(int) groups]));
            Value normed = op("InstanceNormalization", Map.of("epsilon", (float) eps), grouped, scale, shift);
            Value y = castFromFloat(reshape(normed, original));
            if (!affine) {
                return y;
            }
            Value gamma = reshape(param("weight", Init.NORM_SCALE, channels), channels, 1, 1);
            Value beta = reshape(param("bias", Init.NORM_BIAS, channels), channels, 1, 1);
            return add(mul(y, gamma), beta);
        }
    }

    /** torch.nn.LayerNorm named {@code module} over the last axis (statistics in float32). */
    public Value layerNorm(String module, Value x, long dim, double eps, boolean affine, boolean bias) {
        try (Scope s = scope(module)) {
            Value scaleParam = affine ? param("weight", Init.NORM_SCALE, dim) : ones(dim);
            Value biasParam = affine && bias ? param("bias", Init.NORM_BIAS, dim) : null;
            Map<String, Object> attrs = Map.of("axis", -1L, "epsilon", (float) eps);
            if (dtype == DataType.FLOAT) {
                return biasParam == null ? op("LayerNormalization", attrs, x, scaleParam)
                        : op("LayerNormalization", attrs, x, scaleParam, biasParam);
            }
            Value y = biasParam == null
                    ? op("LayerNormalization", attrs, cast(x, DataType.FLOAT), cast(scaleParam, DataType.FLOAT))
                    : op("LayerNormalization", attrs, cast(x, DataType.FLOAT), cast(scaleParam, DataType.FLOAT),
                            cast(biasParam, DataType.FLOAT));
            return cast(y, dtype);
        }
    }

    /** RMS norm over the last axis with a learned gain (statistics in float32). */
    public Value rmsNorm(String module, Value x, long dim, double eps) {
        try (Scope s = scope(module)) {
            Value xf = castToFloat(x);
            Value meanSq = ops.reduce("ReduceMean", nodeName("ReduceMean"), mul(xf, xf), true, -1);
            Value normed = div(xf, op("Sqrt", add(meanSq, scalar(eps, DataType.FLOAT))));
            return mul(castFromFloat(normed), param("weight", Init.NORM_SCALE, dim));
        }
    }

    private Value ones(long dim) {
        float[] v = new float[(int) dim];
        java.util.Arrays.fill(v, 1f);
        return floats("ones_" + dim, new long[] {dim}, v);
    }

    private Value castToFloat(Value x) {
        return dtype == DataType.FLOAT ? x : cast(x, DataType.FLOAT);
    }

    private Value castFromFloat(Value x) {
        return dtype == DataType.FLOAT ? x : cast(x, dtype);
    }

    /**
     * Multi-head scaled dot-product attention: q [B, N, H*D], k and v [B, M, H*D] -> [B, N, H*D].
     * Written as MatMul-Softmax-MatMul with the scale folded into q, the form TensorRT fuses.
     */
    public Value attention(Value q, Value k, Value v, long heads, long headDim) {
        return attention(q, k, v, heads, headDim, null);
    }

    /**
     * {@link #attention(Value, Value, Value, long, long)} with an additive {@code mask} (0 where attention is
     * allowed, a large negative value where not) broadcastable to the scores [B, heads, N, M]; null for none.
     */
    public Value attention(Value q, Value k, Value v, long heads, long headDim, Value mask) {
        Value qh = transpose(reshape(q, 0, -1, heads, headDim), 0, 2, 1, 3);
        Value kt = transpose(reshape(k, 0, -1, heads, headDim), 0, 2, 3, 1);
        Value vh = transpose(reshape(v, 0, -1, heads, headDim), 0, 2, 1, 3);
        Value scores = matmul(mul(qh, scalar(1.0 / Math.sqrt(headDim))), kt);
        if (mask != null) {
            scores = add(scores, mask);
        }
        Value probs = softmax(scores, -1);
        Value ctx = matmul(probs, vh);
        return reshape(transpose(ctx, 0, 2, 1, 3), 0, -1, heads * headDim);
    }

    /**
     * Sinusoidal timestep embedding as in diffusers' get_timestep_embedding: t [B] -> [B, dim],
     * exponent = -ln(maxPeriod) * i / (half - shift); [sin, cos] or [cos, sin] when flipped.
     * Computed in float32 (timesteps reach 1000), cast to the export type at the end.
     */
    public Value timestepEmbedding(Value timesteps, long dim, boolean flipSinToCos, double downscaleFreqShift, double scale,
            double maxPeriod) {
        int half = (int) (dim / 2);
        float[] freqs = new float[half];
        for (int i = 0; i < half; i++) {
            freqs[i] = (float) Math.exp(-Math.log(maxPeriod) * i / (half - downscaleFreqShift));
        }
        Value freq = graph.constant("timestep_freqs_" + half, TensorData.ofFloats(new long[] {1, half}, freqs));
        Value t = timesteps.type() == DataType.FLOAT ? timesteps : cast(timesteps, DataType.FLOAT);
        Value args = mul(unsqueeze(t, 1), freq);
        if (scale != 1) {
            args = mul(args, scalar(scale, DataType.FLOAT));
        }
        Value sin = op("Sin", args);
        Value cos = op("Cos", args);
        Value emb = flipSinToCos ? concat(-1, cos, sin) : concat(-1, sin, cos);
        if (dim % 2 == 1) {
            emb = op("Pad", emb, longs(0, 0, 0, 1));
        }
        return castFromFloat(emb);
    }

    /** Lists parameter names added so far (tests and reports). */
    public List<String> parameterNames() {
        List<String> names = new ArrayList<>();
        for (Value v : graph.initializers()) {
            if (weights.used().containsKey(v.name())) {
                names.add(v.name());
            }
        }
        return names;
    }
}
