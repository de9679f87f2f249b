package dev.sdrt.calibration;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.QdqPass;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model plus <em>taps</em>: small subgraphs that reduce each activation the Q/DQ pass will
 * quantize to a few numbers inside the graph, so one run returns those numbers instead of whole
 * activations (which for an SD 1.5 UNet would be gigabytes per step).
 *
 * <ul>
 *   <li>{@code amax__<tensor>}: {@code ReduceMax(Abs(x))} over all axes, a float scalar, for every
 *       tensor the {@code qdq} pass quantizes ({@link QdqPass#quantizableActivations}).</li>
 *   <li>{@code chmax__<tensor>}: the absolute maximum per input channel (the last axis),
 *       {@code ReduceMax(Abs(Flatten(x, axis=-1)), axes=[0])}, a float vector, for every input of
 *       a MatMul with a constant weight (unless Convs read it too), which SmoothQuant needs.</li>
 * </ul>
 *
 * Tap outputs are cast to float whatever the model's precision. The model's own outputs stay first,
 * in their order, so a denoising loop reads {@code out_sample} as before. Weights are not tapped:
 * their per-channel maxima are read from the initializers on the host ({@link SmoothQuant}).
 */
public final class CalibrationGraph {

    /** Per-tensor absolute maximum (scalar) or per-input-channel absolute maximum (vector). */
    public enum TapKind { AMAX, CHANNEL_MAX }

    /** One tap: the tapped tensor's name in the original model and the graph output that carries it. */
    public record Tap(String tensor, String output, TapKind kind) {
    }

    private final OnnxModel model;
    private final List<String> modelOutputs;
    private final List<Tap> taps;

    private CalibrationGraph(OnnxModel model, List<String> modelOutputs, List<Tap> taps) {
        this.model = model;
        this.modelOutputs = List.copyOf(modelOutputs);
        this.taps = List.copyOf(taps);
    }

    /** A tapped copy of {@code source}; {@code source} is left as it was (weights are shared, not copied). */
    public static CalibrationGraph of(OnnxModel source) {
        OnnxModel model = copyOf(source);
        Graph g = model.graph();
        List<String> outputs = g.outputs().stream().map(Value::name).toList();
        List<Tap> taps = new ArrayList<>();
        for (Value x : QuantTargets.activations(g)) {
            Value abs = g.op("Abs", "calib_abs__" + sanitize(x.name()), x);
            Node max = g.addNode("ReduceMax", "calib_amax__" + sanitize(x.name()), List.of(abs), 1);
            max.setAttr("keepdims", 0L);
            taps.add(new Tap(x.name(), output(g, asFloat(g, max.output(0), x.type()), "amax__" + sanitize(x.name()), Shape.of()),
                    TapKind.AMAX));
        }
        for (Value x : QuantTargets.smoothable(g)) {
            Node flat = g.addNode("Flatten", "calib_flat__" + sanitize(x.name()), List.of(x), 1);
            flat.setAttr("axis", -1L);
            Value abs = g.op("Abs", "calib_chabs__" + sanitize(x.name()), flat.output(0));
            Node max;
            if (model.opset() >= 18) {
                Value axes = g.constant("calib_axes0", TensorData.vector(0));
                max = g.addNode("ReduceMax", "calib_chmax__" + sanitize(x.name()), List.of(abs, axes), 1);
            } else {
                max = g.addNode("ReduceMax", "calib_chmax__" + sanitize(x.name()), List.of(abs), 1);
                max.setAttr("axes", new long[] {0});
            }
            max.setAttr("keepdims", 0L);
            taps.add(new Tap(x.name(), output(g, asFloat(g, max.output(0), x.type()), "chmax__" + sanitize(x.name()),
                    Shape.of(List.of(Dim.UNKNOWN))), TapKind.CHANNEL_MAX));
        }
        return new CalibrationGraph(model, outputs, taps);
    }

    /** The tapped model (a copy; its original outputs come first, then one output per tap). */
    public OnnxModel model() {
        return model;
    }

    /** Names of the original model's outputs. */
    public List<String> modelOutputs() {
        return modelOutputs;
    }

    public List<Tap> taps() {
        return taps;
    }

    /** Taps of one kind, in graph output order. */
    public List<Tap> taps(TapKind kind) {
        return taps.stream().filter(t -> t.kind() == kind).toList();
    }

    /** Letters, digits and underscores only; anything else becomes '_'. */
    static String sanitize(String name) {
        StringBuilder sb = new StringBuilder(name.length());
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            sb.append((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ? c : '_');
        }
        return sb.toString();
    }

    /** Casts a reduced value to float unless the tapped tensor is known to be float already. */
    private static Value asFloat(Graph g, Value v, DataType tappedType) {
        if (tappedType == DataType.FLOAT) {
            return v;
        }
        Node cast = g.addNode("Cast", v.name() + "_f32", List.of(v), 1);
        cast.setAttr("to", (long) DataType.FLOAT.onnxCode());
        return cast.output(0);
    }

    /** Renames {@code v} to a unique name from {@code base} and makes it a typed graph output. */
    private static String output(Graph g, Value v, String base, Shape shape) {
        g.rename(v, g.uniqueValueName(base));
        v.setTypeAndShape(DataType.FLOAT, shape);
        g.addOutput(v);
        return v.name();
    }

    /**
     * A structural copy: same names, nodes, attributes, types and model metadata; initializer data is
     * shared (tensor data is immutable), so copying an SD-sized UNet costs no weight memory.
     */
    static OnnxModel copyOf(OnnxModel source) {
        Graph src = source.graph();
        Graph g = new Graph(src.name());
        OnnxModel copy = new OnnxModel(g, source.opset());
        copy.opsetImports().clear();
        copy.opsetImports().putAll(source.opsetImports());
        copy.setIrVersion(source.irVersion());
        copy.setProducer(source.producerName(), "");
        copy.metadata().putAll(source.metadata());
        for (Value v : src.values().values()) {
            if (v.isConstant()) {
                g.addInitializer(v.name(), v.constant());
            }
        }
        for (Value v : src.inputs()) {
            g.addInput(v.name(), v.type(), v.shape());
        }
        Map<Node, Node> copied = new LinkedHashMap<>();
        for (Node n : src.nodes()) {
            List<Value> ins = new ArrayList<>(n.inputCount());
            for (Value in : n.inputs()) {
                ins.add(in == null ? null : g.valueOrCreate(in.name()));
            }
            List<Value> outs = new ArrayList<>();
            for (Value out : n.outputs()) {
                outs.add(g.valueOrCreate(out.name()));
            }
            Node c = g.addNode(n.opType(), n.domain(), n.name(), ins, outs);
            n.attributes().values().forEach(c::setAttr);
            copied.put(n, c);
        }
        copied.forEach((n, c) -> n.implicitInputs().forEach(v -> g.addImplicitInput(c, g.valueOrCreate(v.name()))));
        for (Value v : src.values().values()) {
            Value c = g.value(v.name());
            if (c != null && !c.isConstant() && !c.isGraphInput()) {
                c.setTypeAndShape(v.type(), v.shape());
            }
        }
        for (Value out : src.outputs()) {
            g.addOutput(g.requireValue(out.name()));
        }
        return copy;
    }

    @Override
    public String toString() {
        return "CalibrationGraph(" + taps(TapKind.AMAX).size() + " amax taps, " + taps(TapKind.CHANNEL_MAX).size()
                + " channel-max taps)";
    }
}
