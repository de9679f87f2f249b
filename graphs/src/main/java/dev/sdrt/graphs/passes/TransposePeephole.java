package dev.sdrt.graphs.passes;

import static dev.sdrt.graphs.passes.Layouts.perm;

import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import java.util.List;

/** The transpose peephole of channels-last: adjacent Transposes that compose to the identity go, wherever they are. */
final class TransposePeephole {
    private TransposePeephole() {
    }

    /** Transpose → Transpose whose perms compose to the identity: readers of the second read the first's input. */
    /** Returns the number of pairs cancelled. */
    static int cancelInversePairs(Graph graph) {
        int cancelledPairs = 0;
        for (Node t2 : List.copyOf(graph.nodes())) {
            if (!t2.is("Transpose") || t2.graph() != graph || !graph.nodes().contains(t2)) {
                continue;
            }
            Value mid = t2.input(0);
            Node t1 = mid.producer();
            Value out = t2.output(0);
            if (t1 == null || !t1.is("Transpose") || out.isGraphOutput() || out.consumers().isEmpty() || mid.shape() == null) {
                continue;
            }
            int rank = mid.shape().rank();
            long[] p1 = perm(t1, rank);
            long[] p2 = perm(t2, rank);
            boolean identity = p1.length == p2.length;
            for (int i = 0; identity && i < p2.length; i++) {
                identity = p1[(int) p2[i]] == i;
            }
            if (!identity) {
                continue;
            }
            // t2 (and t1 when nothing else reads it) goes in cleanup
            graph.replaceAllUses(out, t1.input(0));
            cancelledPairs++;
        }
        return cancelledPairs;
    }
}
