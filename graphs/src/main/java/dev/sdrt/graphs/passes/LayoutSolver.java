package dev.sdrt.graphs.passes;

import static dev.sdrt.graphs.passes.Layouts.NCHW;
import static dev.sdrt.graphs.passes.Layouts.NHWC;
import static dev.sdrt.graphs.passes.Layouts.TO_NHWC;
import static dev.sdrt.graphs.passes.Layouts.isPerm;

import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The layout parity solver of channels-last: which layout (NCHW or NHWC) each value of the graph
 * as it was holds, which values are layouts of one logical tensor, and which belong to a region
 * that touches a convolution.
 */
final class LayoutSolver {
    private final Map<Value, Integer> ids = new HashMap<>();
    private final ParityUnionFind parity;
    private final UnionFind connected;
    private final UnionFind sameTensor;
    private Set<Value> anchorValues = Set.of();
    private Set<Integer> convRoots;
    private int conflicts;

    /** Numbers the graph's values; values added later have no layout here. */
    LayoutSolver(Graph graph) {
        int n = 1;
        for (Value v : graph.values().values()) {
            ids.put(v, n++);
        }
        parity = new ParityUnionFind(n);
        connected = new UnionFind(n);
        sameTensor = new UnionFind(n);
    }

    int id(Value v) {
        Integer i = ids.get(v);
        if (i == null) {
            throw new IllegalStateException("value " + v.name() + " appeared during analysis");
        }
        return i;
    }

    /** Whether {@code v} was in the graph when the solver numbered it. */
    boolean known(Value v) {
        return ids.containsKey(v);
    }

    /** The representative of the logical tensor {@code v} is a layout of. */
    int tensorRoot(Value v) {
        return sameTensor.find(id(v));
    }

    /** Units left in their layout because their tensors are needed in both at once. */
    int conflicts() {
        return conflicts;
    }

    /**
     * Anchors read and write NCHW; a converter's input and output hold opposite layouts; a unit's
     * activations share one. A converter or unit that contradicts what is known already keeps its
     * current layout. Units and converters also join tensors into connected regions.
     */
    void solve(Set<Value> anchorValues, Set<Node> converters, List<LayoutUnit> units) {
        this.anchorValues = anchorValues;
        for (Value v : anchorValues) {
            parity.union(id(v), 0, NCHW);
        }
        for (Node t : List.copyOf(converters)) {
            int in = id(t.input(0));
            int out = id(t.output(0));
            int inLayout = isPerm(t, TO_NHWC) ? NCHW : NHWC;
            boolean ok = parity.consistent(in, 0, inLayout) && parity.consistent(out, 0, 1 - inLayout)
                    && parity.consistent(in, out, 1);
            if (!ok) {
                converters.remove(t);
                continue;
            }
            parity.union(in, 0, inLayout);
            parity.union(out, 0, 1 - inLayout);
            connected.union(in, out);
            sameTensor.union(in, out);
        }
        for (LayoutUnit u : units) {
            Map<Integer, Integer> rootParity = new HashMap<>();
            boolean ok = true;
            for (Value v : u.acts) {
                int i = id(v);
                int root = parity.find(i);
                Integer seen = rootParity.putIfAbsent(root, parity.parityToRoot(i));
                if (seen != null && seen != parity.parityToRoot(i)) {
                    ok = false;
                }
            }
            if (!ok) {
                u.conflicting = true;
                conflicts++;
                continue;
            }
            int first = id(u.acts.get(0));
            for (Value v : u.acts) {
                parity.union(first, id(v), 0);
                connected.union(first, id(v));
            }
        }
    }

    boolean isConvAdjacent(Value v) {
        if (convRoots == null) {
            convRoots = new HashSet<>();
            for (Value a : anchorValues) {
                convRoots.add(connected.find(id(a)));
            }
        }
        return convRoots.contains(connected.find(id(v)));
    }

    /** The layout {@code v} holds now: fixed by anchors, converters and units, else NCHW. */
    int layoutOf(Value v) {
        Integer i = ids.get(v);
        if (i == null || !parity.determined(i)) {
            return NCHW;
        }
        return parity.layout(i);
    }
}
