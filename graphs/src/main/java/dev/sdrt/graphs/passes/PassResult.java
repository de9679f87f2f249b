package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.Graph;
import java.util.ArrayList;
import java.util.List;

/**
 * What one pass did to a graph: how many structures it matched, the nodes it added, removed and
 * rewrote in place, the names of the nodes it touched, free-form notes, and the graph's size and
 * the time taken.
 *
 * @param matched structures the pass recognised and rewrote (attentions fused, constants folded, ...)
 * @param rewritten nodes changed in place (an attribute or a type), neither added nor removed
 * @param affectedNodes names of the nodes the pass added, removed or rewrote (the first of a group
 *     is enough when a group is replaced at once)
 */
public record PassResult(String pass, int matched, int nodesAdded, int nodesRemoved, int rewritten,
        List<String> affectedNodes, List<String> notes, int nodesBefore, int nodesAfter, long paramsBefore,
        long paramsAfter, double millis) {

    public PassResult {
        affectedNodes = List.copyOf(affectedNodes);
        notes = List.copyOf(notes);
    }

    /** Nodes added, removed or rewritten: 0 when the pass left the graph as it was. */
    public int changes() {
        return nodesAdded + nodesRemoved + rewritten;
    }

    /** Starts a result, recording the graph's size and the clock now. */
    public static Builder begin(String pass, Graph graph) {
        return new Builder(pass, graph);
    }

    /** Collects counts while a pass runs; {@link #end} records the graph's size afterwards. */
    public static final class Builder {
        private final String pass;
        private final int nodesBefore;
        private final long paramsBefore;
        private final long startNanos = System.nanoTime();
        private int matched;
        private int added;
        private int removed;
        private int rewritten;
        private final List<String> affected = new ArrayList<>();
        private final List<String> notes = new ArrayList<>();

        private Builder(String pass, Graph graph) {
            this.pass = pass;
            this.nodesBefore = graph.nodes().size();
            this.paramsBefore = graph.parameterCount();
        }

        public Builder matched(int n) {
            matched += n;
            return this;
        }

        public Builder added(int n) {
            added += n;
            return this;
        }

        public Builder removed(int n) {
            removed += n;
            return this;
        }

        public Builder rewritten(int n) {
            rewritten += n;
            return this;
        }

        public Builder affected(String nodeName) {
            affected.add(nodeName);
            return this;
        }

        public Builder note(String note) {
            notes.add(note);
            return this;
        }

        public PassResult end(Graph graph) {
            return new PassResult(pass, matched, added, removed, rewritten, affected, notes, nodesBefore,
                    graph.nodes().size(), paramsBefore, graph.parameterCount(), (System.nanoTime() - startNanos) / 1e6);
        }
    }
}
