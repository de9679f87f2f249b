package dev.sdrt.graphs.ir;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The IR's notions of "constant", one place for all passes. There are three, on purpose:
 *
 * <ul>
 *   <li>{@link Value#isConstant()}: an initializer (data stored in the graph);
 *   <li>{@link #isConstant(Value)} / {@link #data(Value)}: data known without running the graph,
 *       an initializer or the {@code value} of a Constant node, which passes may read and rewrite;
 *   <li>{@link DataIndependence}: computed only from constants and tensor shapes (Constant nodes of
 *       any kind, Shape, and anything downstream of only those), which holds no data a pass can read
 *       but carries no activations either: what tracing through reshapes and scales skips.
 * </ul>
 */
public final class Constants {
    private Constants() {
    }

    /** Whether {@code v} (may be null) is an initializer or the {@code value} of a Constant node. */
    public static boolean isConstant(Value v) {
        return v != null && v.hasConstantData();
    }

    /** The data of {@code v} when {@link #isConstant(Value)}, else null. */
    public static TensorData data(Value v) {
        return v == null ? null : v.constantData();
    }

    /**
     * Values computed only from constants and shapes (memoized per instance; the graph must not
     * change while one is in use). A null value counts as data-independent (an absent optional input).
     */
    public static final class DataIndependence {
        private final Map<Value, Boolean> known = new IdentityHashMap<>();

        public boolean test(Value v) {
            if (v == null) {
                return true;
            }
            Boolean cached = known.get(v);
            if (cached != null) {
                return cached;
            }
            boolean result;
            Node p = v.producer();
            if (v.isConstant()) {
                result = true;
            } else if (p == null) {
                result = false;
            } else if (p.is("Constant") || p.is("Shape")) {
                result = true;
            } else {
                known.put(v, false); // guards against cycles while recursing
                result = p.inputs().stream().allMatch(this::test);
            }
            known.put(v, result);
            return result;
        }
    }
}
