package dev.sdrt.runtime.trt;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A graph's nodes, reached from its single root in breadth-first order, with each node's
 * predecessors by index. The bindings of CUDA's graph API return one dependent at a time, so the
 * walk takes a node's first dependent, records the edge and removes it, until none is left: taking
 * the topology leaves the graph without edges, and the caller adds back the ones it wants.
 *
 * @param <N> the graph's node handle (a CUDA graph node, or a stand-in in tests)
 */
final class GraphTopology<N> {

    /** The three graph operations the walk needs. */
    interface Edges<N> {
        /** The graph's only root; fails when there is not exactly one. */
        N root();

        /** One node that depends on {@code node}, or null when none is left. */
        N firstDependent(N node);

        /** Removes the edge {@code from -> to} that {@link #firstDependent} just returned. */
        void removeEdge(N from, N to);
    }

    private final List<N> nodes;
    private final int[][] predecessors;

    private GraphTopology(List<N> nodes, int[][] predecessors) {
        this.nodes = nodes;
        this.predecessors = predecessors;
    }

    /** Walks the graph from its root, removing every edge on the way. */
    static <N> GraphTopology<N> detach(Edges<N> graph) {
        List<N> nodes = new ArrayList<>();
        List<List<Integer>> predecessors = new ArrayList<>();
        Map<N, Integer> index = new HashMap<>();
        N root = graph.root();
        index.put(root, 0);
        nodes.add(root);
        predecessors.add(new ArrayList<>());
        for (int current = 0; current < nodes.size(); current++) {
            N from = nodes.get(current);
            for (N to = graph.firstDependent(from); to != null; to = graph.firstDependent(from)) {
                Integer target = index.get(to);
                if (target == null) {
                    target = nodes.size();
                    index.put(to, target);
                    nodes.add(to);
                    predecessors.add(new ArrayList<>());
                }
                predecessors.get(target).add(current);
                graph.removeEdge(from, to);
            }
        }
        return new GraphTopology<>(List.copyOf(nodes),
                predecessors.stream().map(list -> list.stream().mapToInt(Integer::intValue).toArray()).toArray(int[][]::new));
    }

    /** Every node; index 0 is the root. */
    List<N> nodes() {
        return nodes;
    }

    /** For each node, the indices of the nodes it depended on. */
    int[][] predecessors() {
        return predecessors;
    }
}
