package dev.sdrt.runtime.trt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class GraphTopologyTest {

    /** An in-memory graph that, like CUDA's bindings, hands out one dependent at a time. */
    private static final class FakeGraph implements GraphTopology.Edges<String> {
        final Map<String, List<String>> dependents = new LinkedHashMap<>();
        int removals;

        FakeGraph edge(String from, String to) {
            dependents.computeIfAbsent(from, k -> new ArrayList<>()).add(to);
            dependents.computeIfAbsent(to, k -> new ArrayList<>());
            return this;
        }

        @Override
        public String root() {
            List<String> roots = dependents.keySet().stream()
                    .filter(node -> dependents.values().stream().noneMatch(list -> list.contains(node))).toList();
            if (roots.size() != 1) {
                throw new IllegalStateException(roots.size() + " roots");
            }
            return roots.get(0);
        }

        @Override
        public String firstDependent(String node) {
            List<String> list = dependents.get(node);
            return list.isEmpty() ? null : list.get(0);
        }

        @Override
        public void removeEdge(String from, String to) {
            assertTrue(dependents.get(from).remove(to), "removed an edge that is not there: " + from + " -> " + to);
            removals++;
        }
    }

    @Test
    void aChainIsWalkedInOrder() {
        FakeGraph graph = new FakeGraph().edge("root", "a").edge("a", "b").edge("b", "c");
        GraphTopology<String> topology = GraphTopology.detach(graph);
        assertEquals(List.of("root", "a", "b", "c"), topology.nodes());
        assertArrayEquals(new int[][] {{}, {0}, {1}, {2}}, topology.predecessors());
        assertEquals(3, graph.removals);
    }

    @Test
    void forksAndJoinsKeepEveryPredecessorAndLeaveNoEdge() {
        // root -> a, root -> b (an auxiliary stream), a -> join, b -> join, join -> end, root -> end
        FakeGraph graph = new FakeGraph().edge("root", "a").edge("root", "b").edge("a", "join").edge("b", "join")
                .edge("join", "end").edge("root", "end");
        GraphTopology<String> topology = GraphTopology.detach(graph);
        assertEquals(List.of("root", "a", "b", "end", "join"), topology.nodes());
        int join = topology.nodes().indexOf("join");
        int end = topology.nodes().indexOf("end");
        assertArrayEquals(new int[] {1, 2}, topology.predecessors()[join]);
        assertArrayEquals(new int[] {0, join}, topology.predecessors()[end]);
        assertEquals(6, graph.removals);
        assertTrue(graph.dependents.values().stream().allMatch(List::isEmpty), "edges left: " + graph.dependents);
    }

    @Test
    void aSingleNodeGraphHasNoEdges() {
        FakeGraph graph = new FakeGraph();
        graph.dependents.put("only", new ArrayList<>());
        GraphTopology<String> topology = GraphTopology.detach(graph);
        assertEquals(List.of("only"), topology.nodes());
        assertArrayEquals(new int[][] {{}}, topology.predecessors());
    }

    @Test
    void twoRootsAreRefusedByTheGraph() {
        FakeGraph graph = new FakeGraph().edge("r1", "a").edge("r2", "a");
        assertThrows(IllegalStateException.class, () -> GraphTopology.detach(graph));
    }
}
