package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * {@code static-shapes:NAME=VALUE[:NAME=VALUE]*}: pins symbolic dimensions by name, then runs shape
 * inference again so that every value computed from them gets static shapes.
 *
 * <pre>
 *   sample [batch, 4, height, width]                  sample [2, 4, 8, 8]
 *   encoder_hidden_states [batch, sequence, 32]   →   encoder_hidden_states [2, 77, 32]
 *   ... every intermediate value from inference ...   (static-shapes:batch=2:height=8:width=8:sequence=77)
 * </pre>
 *
 * <ul>
 *   <li><b>Names:</b> any symbolic dimension ({@code dim_param}) of the graph's inputs or outputs;
 *       sdrt's exports name theirs {@code batch}, {@code height}, {@code width} (latent pixels
 *       for a UNet, SD3 transformer or VAE decoder; image pixels for a VAE encoder) and
 *       {@code sequence} (text tokens). A name the graph does not have is an error that lists the
 *       graph's symbolic dimensions. Dimensions left unnamed stay symbolic.
 *   <li><b>What changes:</b> every value whose shape names a pinned dimension gets its value; the
 *       shapes of intermediate values that are still not fully static are dropped and inferred
 *       again (ONNX shape inference with data propagation, so Shape → Gather → Concat → Reshape
 *       chains resolve). Nodes are not touched: run {@code cleanup} afterwards to fold the shape
 *       arithmetic that has become constant. The graph then accepts only the pinned sizes.
 *   <li><b>Checked:</b> inference runs in strict mode, so sizes the graph cannot take (a UNet
 *       latent that is not a multiple of its downsampling: its skip connections no longer
 *       concatenate) are an error that leaves the graph as it was. A graph that strict inference
 *       rejects before pinning too is pinned with lenient inference, with a note.
 *   <li><b>Why:</b> passes that need static sizes (token merging needs static token counts), and
 *       engines built for one shape.
 *   <li><b>Result:</b> {@code matched} is the number of dimensions pinned, {@code changes} the
 *       number of values whose shape changed (the graph inputs included); the notes list the pins
 *       and any value that stays symbolic.
 *   <li><b>Idempotent:</b> the pins are recorded in the model's metadata ({@value #METADATA_KEY});
 *       running the same pins again changes nothing, a different value for a name pinned before is
 *       an error.
 * </ul>
 */
public final class StaticShapesPass implements GraphPass {

    /** metadata_props key holding the pins applied so far, {@code name=value;name=value}. */
    public static final String METADATA_KEY = "sdrt.static_shapes";

    private final Map<String, Long> pins;

    /** @param pins symbolic dimension name → size (at least 1), applied in this order */
    public StaticShapesPass(Map<String, Long> pins) {
        if (pins.isEmpty()) {
            throw new IllegalArgumentException("static-shapes needs at least one name=value, e.g."
                    + " static-shapes:batch=2:height=64:width=64");
        }
        for (var e : pins.entrySet()) {
            if (e.getKey() == null || e.getKey().isBlank()) {
                throw new IllegalArgumentException("static-shapes: empty dimension name");
            }
            if (e.getValue() == null || e.getValue() < 1) {
                throw new IllegalArgumentException("static-shapes: " + e.getKey() + " must be a positive integer, got "
                        + e.getValue());
            }
        }
        this.pins = new LinkedHashMap<>(pins);
    }

    /** From pipeline options: every option is a dimension name with its size. */
    static StaticShapesPass fromOptions(Map<String, String> options) {
        Map<String, Long> pins = new LinkedHashMap<>();
        for (var e : options.entrySet()) {
            long value;
            try {
                value = Long.parseLong(e.getValue());
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException("static-shapes: " + e.getKey() + " must be a positive integer, got '"
                        + e.getValue() + "'");
            }
            pins.put(e.getKey(), value);
        }
        return new StaticShapesPass(pins);
    }

    @Override
    public String name() {
        return "static-shapes";
    }

    /** The pins, in spec order. */
    public Map<String, Long> pins() {
        return Collections.unmodifiableMap(pins);
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        Map<String, Long> before = recorded(model);
        Map<String, Set<String>> symbolic = symbolicDims(graph);

        Map<String, Long> toPin = new LinkedHashMap<>();
        List<String> again = new ArrayList<>();
        for (var e : pins.entrySet()) {
            String dim = e.getKey();
            Long earlier = before.get(dim);
            if (earlier != null && !earlier.equals(e.getValue())) {
                throw new IllegalArgumentException("static-shapes: " + dim + " was pinned to " + earlier + " before ("
                        + METADATA_KEY + "=" + model.metadata().get(METADATA_KEY) + "), cannot pin it to " + e.getValue()
                        + "; start from the dynamic graph");
            }
            if (symbolic.containsKey(dim)) {
                toPin.put(dim, e.getValue());
            } else if (earlier != null) {
                again.add(dim + "=" + earlier);
            } else {
                throw new IllegalArgumentException("static-shapes: the graph has no symbolic dimension named '" + dim + "'; "
                        + describe(symbolic, before));
            }
        }
        if (!again.isEmpty()) {
            result.note("already pinned: " + String.join(", ", again));
        }
        if (toPin.isEmpty()) {
            return result.end(graph);
        }

        Map<Value, Shape> original = new LinkedHashMap<>(); // graph order, so the report lists values the same way each run
        for (Value v : graph.values().values()) {
            if (!v.isConstant()) {
                original.put(v, v.shape());
            }
        }
        pin(original.keySet(), toPin);
        try {
            OnnxChecker.inferShapes(model, true);
        } catch (OnnxChecker.OnnxCheckException pinnedError) {
            // strict inference fails: because of the pins, or because of the graph itself (then the
            // lenient result is the best there is)
            original.forEach(Value::setShape);
            if (strictInferenceAccepts(model)) {
                original.forEach(Value::setShape);
                throw new IllegalArgumentException("static-shapes: shape inference rejects " + format(toPin) + ": "
                        + firstLine(pinnedError.getMessage()), pinnedError);
            }
            original.forEach(Value::setShape);
            pin(original.keySet(), toPin);
            result.note("shape inference reports errors on this graph before pinning too; shapes are inferred where it can");
            try {
                OnnxChecker.inferShapes(model);
            } catch (OnnxChecker.OnnxCheckException e) {
                result.note("shape inference failed, only the named dimensions are pinned: " + e.getMessage());
            }
        }

        int changed = 0;
        Set<String> nodes = new LinkedHashSet<>();
        List<String> stillSymbolic = new ArrayList<>();
        for (var e : original.entrySet()) {
            Value v = e.getKey();
            if (!Objects.equals(e.getValue(), v.shape())) {
                changed++;
                Node producer = v.producer();
                if (producer != null) {
                    nodes.add(producer.name());
                }
            }
            if (v.shape() == null || !v.shape().isFullyFixed()) {
                stillSymbolic.add(v.name() + (v.shape() == null ? "" : v.shape().toString()));
            }
        }
        nodes.forEach(result::affected);
        Map<String, Long> recorded = new LinkedHashMap<>(before);
        recorded.putAll(toPin);
        model.metadata().put(METADATA_KEY, recorded.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(";")));
        result.matched(toPin.size()).rewritten(changed);
        result.note("pinned " + format(toPin) + ": " + changed + " value shapes changed");
        for (var e : toPin.entrySet()) {
            result.note("  " + e.getKey() + "=" + e.getValue() + " in " + String.join(", ", symbolic.get(e.getKey())));
        }
        Set<String> left = symbolicDims(graph).keySet();
        if (!left.isEmpty()) {
            result.note("left symbolic: " + String.join(", ", left));
        }
        if (!stillSymbolic.isEmpty()) {
            result.note(stillSymbolic.size() + " value" + (stillSymbolic.size() == 1 ? "" : "s")
                    + " without a fully static shape, e.g. " + String.join(", ", stillSymbolic.subList(0,
                            Math.min(5, stillSymbolic.size()))));
        }
        return result.end(graph);
    }

    /**
     * Gives every value its pinned sizes; the shapes of intermediate values that are still not
     * fully static (stale derived sizes, inferred before the pins) are dropped, to be inferred again.
     */
    private static void pin(Iterable<Value> values, Map<String, Long> toPin) {
        for (Value v : values) {
            Shape s = substitute(v.shape(), toPin);
            boolean intermediate = v.producer() != null && !v.isGraphOutput();
            v.setShape(intermediate && s != null && !s.isFullyFixed() ? null : s);
        }
    }

    private static boolean strictInferenceAccepts(OnnxModel model) {
        try {
            OnnxChecker.inferShapes(model, true);
            return true;
        } catch (OnnxChecker.OnnxCheckException e) {
            return false;
        }
    }

    /** Symbolic dimension names of the graph's inputs, then outputs, each with the values that carry it. */
    private static Map<String, Set<String>> symbolicDims(Graph graph) {
        Map<String, Set<String>> dims = new LinkedHashMap<>();
        List<Value> io = new ArrayList<>(graph.inputs());
        io.addAll(graph.outputs());
        for (Value v : io) {
            if (v.isConstant() || v.shape() == null) {
                continue;
            }
            for (Dim d : v.shape().dims()) {
                if (!d.isFixed() && d.param() != null && !d.param().isEmpty()) {
                    dims.computeIfAbsent(d.param(), k -> new LinkedHashSet<>()).add(v.name());
                }
            }
        }
        return dims;
    }

    private static Shape substitute(Shape shape, Map<String, Long> pins) {
        if (shape == null) {
            return null;
        }
        List<Dim> dims = new ArrayList<>(shape.rank());
        boolean any = false;
        for (Dim d : shape.dims()) {
            Long pinned = !d.isFixed() && d.param() != null ? pins.get(d.param()) : null;
            dims.add(pinned != null ? Dim.of(pinned) : d);
            any |= pinned != null;
        }
        return any ? Shape.of(dims) : shape;
    }

    /** The pins recorded by earlier runs (empty when none or unreadable). */
    private static Map<String, Long> recorded(OnnxModel model) {
        Map<String, Long> pins = new LinkedHashMap<>();
        String text = model.metadata().get(METADATA_KEY);
        if (text == null) {
            return pins;
        }
        for (String entry : text.split(";")) {
            int eq = entry.lastIndexOf('=');
            if (eq > 0) {
                try {
                    pins.put(entry.substring(0, eq), Long.parseLong(entry.substring(eq + 1)));
                } catch (NumberFormatException e) {
                    // not ours: ignore
                }
            }
        }
        return pins;
    }

    private static String describe(Map<String, Set<String>> symbolic, Map<String, Long> before) {
        StringBuilder sb = new StringBuilder();
        if (symbolic.isEmpty()) {
            sb.append("its inputs and outputs have no symbolic dimensions");
        } else {
            sb.append("its symbolic dimensions are ");
            sb.append(symbolic.entrySet().stream().map(e -> e.getKey() + " (" + String.join(", ", e.getValue()) + ")")
                    .collect(Collectors.joining(", ")));
        }
        if (!before.isEmpty()) {
            sb.append("; pinned before: ").append(format(before));
        }
        return sb.toString();
    }

    /** The first line of a long inference report, with the number of lines left out. */
    private static String firstLine(String message) {
        String m = String.valueOf(message).strip();
        List<String> lines = m.lines().toList();
        return lines.size() <= 1 ? m : lines.get(0) + " (and " + (lines.size() - 1) + " more errors after it)";
    }

    private static String format(Map<String, Long> pins) {
        return pins.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "));
    }
}
