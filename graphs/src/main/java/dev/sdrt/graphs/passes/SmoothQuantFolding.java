package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.QdqPass.Target;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * SmoothQuant folding for the qdq pass: the weights' input channels scaled by s and the activation
 * by 1/s, folded into a LayerNormalization's γ and β where only smoothed ops read its output,
 * otherwise a Mul. Exact in float (a product regrouped).
 */
final class SmoothQuantFolding {
    private final Graph graph;
    private final Scales.SmoothQuant smoothQuant;
    private final boolean quantize;
    private final Map<Value, Float> amaxOf;
    private int added;
    private int rewritten;
    private int smoothed;
    private int foldedIntoNorm;
    private int smoothMuls;
    private int boundedAmax;

    /** {@code amaxOf}: the file's amax of each planned activation, read and extended when {@code quantize}. */
    SmoothQuantFolding(Graph graph, Scales.SmoothQuant smoothQuant, boolean quantize, Map<Value, Float> amaxOf) {
        this.graph = graph;
        this.smoothQuant = smoothQuant;
        this.quantize = quantize;
        this.amaxOf = amaxOf;
    }

    int added() {
        return added;
    }

    int rewritten() {
        return rewritten;
    }

    /** The pass's note on what was smoothed. */
    String note() {
        return String.format("SmoothQuant: %d activations smoothed, %d folded into LayerNormalization, %d by a Mul%s",
                smoothed, foldedIntoNorm, smoothMuls, boundedAmax > 0 ? "; " + boundedAmax
                        + " without a smoothed amax in the file used amax / min(s), an upper bound" : "");
    }

    /** The name {@code v}'s smoothing factors are filed under: its own, or through Cast/Identity (which keep the channel order). */
    private String factorsName(Value v) {
        Value u = v;
        for (int depth = 0; u != null && depth < 4; depth++) {
            if (smoothQuant.factors().containsKey(u.name())) {
                return u.name();
            }
            Node p = u.producer();
            if (p == null || !(p.is("Cast") || p.is("Identity"))) {
                return null;
            }
            u = p.input(0);
        }
        return null;
    }

    /**
     * Smooths the planned targets: rewrites their weights (and activations, by a Mul or through a
     * LayerNormalization's γ and β), records each reader's new activation in {@code activationOf}
     * and, when quantizing, the smoothed activation's amax in {@code amaxOf}; replaces every planned
     * target by one with its current activation and weight.
     */
    void smooth(List<Target> planned, Map<Node, Value> activationOf) {
        Map<Value, List<Target>> byActivation = new LinkedHashMap<>();
        for (Target t : planned) {
            byActivation.computeIfAbsent(t.activation(), k -> new ArrayList<>()).add(t);
        }
        for (Map.Entry<Value, List<Target>> e : byActivation.entrySet()) {
            Value x = e.getKey();
            String filed = factorsName(x);
            if (filed == null) {
                continue;
            }
            float[] s = smoothQuant.factors().get(filed);
            List<Target> readers = new ArrayList<>();
            for (Target t : e.getValue()) {
                // channels on the activation's last axis (Gemm with A transposed has them first), or axis 1 of an ungrouped Conv
                boolean groupedConv = t.node().is("Conv") && t.node().attrInt("group", 1) != 1;
                boolean transposedA = t.node().is("Gemm") && t.node().attrInt("transA", 0) != 0;
                if (!groupedConv && !transposedA) {
                    readers.add(t);
                }
            }
            if (readers.isEmpty()) {
                continue;
            }
            boolean conv = readers.get(0).node().is("Conv");
            if (readers.stream().anyMatch(t -> t.node().is("Conv") != conv)) {
                continue;
            }
            for (Target t : readers) {
                long channels = Constants.data(t.weight()).dims()[t.inputAxis()];
                if (channels != s.length) {
                    throw new IllegalArgumentException("smoothquant factors of " + x.name() + " have " + s.length
                            + " entries but the weight of " + t.node().name() + " has " + channels + " input channels");
                }
            }
            Value smoothedX = divideActivation(x, s, readers, conv);
            for (Target t : readers) {
                Value w = graph.constant(t.weight().name() + "_smoothed", scaleInputChannels(
                        Constants.data(t.weight()), t.inputAxis(), s));
                t.node().setInput(1, w);
                if (smoothedX != x) {
                    t.node().setInput(0, smoothedX);
                }
                activationOf.put(t.node(), smoothedX);
                rewritten++;
            }
            if (quantize) {
                Float a = smoothQuant.amax().get(filed);
                if (a == null) {
                    float min = Float.MAX_VALUE;
                    for (float f : s) {
                        min = Math.min(min, f);
                    }
                    a = amaxOf.get(x) / min;
                    boundedAmax++;
                }
                amaxOf.put(smoothedX, a);
            }
            smoothed++;
        }
        planned.replaceAll(t -> new Target(t.node(), activationOf.get(t.node()), t.node().input(1), t.axis(), t.inputAxis()));
    }

    /**
     * x / s for the smoothed readers: a LayerNormalization's γ and β divided by s when its output
     * is x (or is cast to x: fp16 graphs keep the normalization in float32 and cast after it) and
     * only these readers read it, otherwise a Mul by 1/s.
     */
    private Value divideActivation(Value x, float[] s, List<Target> readers, boolean conv) {
        Node ln = normalizationBehind(x);
        Set<Node> smoothedNodes = new LinkedHashSet<>();
        readers.forEach(t -> smoothedNodes.add(t.node()));
        boolean onlySmoothedReaders = !x.isGraphOutput() && smoothedNodes.containsAll(x.consumerNodes());
        if (!conv && onlySmoothedReaders && ln != null && foldable(ln, s.length)) {
            for (int i = 1; i <= 2 && i < ln.inputs().size() && ln.input(i) != null; i++) {
                Value original = ln.input(i);
                // the unsmoothed γ/β go in cleanup
                ln.setInput(i, graph.constant(original.name() + "_smoothed", divide(Constants.data(original), s)));
            }
            foldedIntoNorm++;
            rewritten++;
            return x;
        }
        DataType type = x.type() == null ? DataType.FLOAT : x.type();
        float[] inverse = new float[s.length];
        for (int i = 0; i < s.length; i++) {
            inverse[i] = 1f / s[i];
        }
        long[] dims = conv ? new long[] {s.length, 1, 1} : new long[] {s.length};
        Value mul = graph.op("Mul", x.name() + "_smooth", List.of(x, graph.constant(x.name() + "_smooth_factors",
                TensorData.ofFloatsAs(type, dims, inverse))), null);
        mul.setTypeAndShape(type, x.shape());
        added++;
        smoothMuls++;
        return mul;
    }

    /**
     * The LayerNormalization whose first output is {@code x}, or is read only by the Cast that
     * makes {@code x}; null when there is none. Scaling before a Cast equals scaling after it (up
     * to the rounding the Cast does anyway).
     */
    private Node normalizationBehind(Value x) {
        Node producer = x.producer();
        if (producer != null && producer.is("Cast")) {
            Value normalized = producer.input(0);
            if (normalized.isGraphOutput() || normalized.consumers().size() != 1) {
                return null;
            }
            producer = normalized.producer();
            x = normalized;
        }
        return producer != null && producer.is("LayerNormalization") && producer.output(0) == x ? producer : null;
    }

    /** LayerNormalization over the last axis with constant γ (and β) of {@code channels} elements, its statistics outputs unused. */
    private boolean foldable(Node ln, int channels) {
        Value x = ln.input(0);
        long axis = ln.attrInt("axis", -1);
        boolean lastAxis = axis == -1 || x.shape() != null && axis == x.shape().rank() - 1;
        for (int i = 1; i < ln.outputs().size(); i++) {
            if (!ln.output(i).consumers().isEmpty() || ln.output(i).isGraphOutput()) {
                return false;
            }
        }
        Value gamma = ln.input(1);
        Value beta = ln.input(2);
        return lastAxis && Constants.isConstant(gamma) && Constants.data(gamma).numElements() == channels
                && (beta == null || Constants.isConstant(beta) && Constants.data(beta).numElements() == channels);
    }

    private TensorData divide(TensorData t, float[] s) {
        float[] v = t.toFloats();
        for (int i = 0; i < v.length; i++) {
            v[i] /= s[i];
        }
        return TensorData.ofFloatsAs(t.type(), t.dims(), v);
    }

    /** W with every slice along {@code axis} (the input channels) multiplied by s. */
    private TensorData scaleInputChannels(TensorData w, int axis, float[] s) {
        long[] dims = w.dims();
        float[] v = w.toFloats();
        long inner = 1;
        for (int i = axis + 1; i < dims.length; i++) {
            inner *= dims[i];
        }
        long channels = dims[axis];
        for (int i = 0; i < v.length; i++) {
            v[i] *= s[(int) ((i / inner) % channels)];
        }
        return TensorData.ofFloatsAs(w.type(), dims, v);
    }
}
