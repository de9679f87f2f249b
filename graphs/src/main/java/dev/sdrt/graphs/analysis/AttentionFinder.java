package dev.sdrt.graphs.analysis;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds scaled dot-product attention in a graph by structure: MatMul(q, k^T) → [scale/mask] →
 * Softmax → MatMul(·, v), then traces q, k and v back to their projection MatMuls, through the
 * Concat that joins two streams in joint attention and the Split of fused projections. Works on
 * sdrt's exports and on torch-exported diffusers graphs, whatever the node names.
 */
public final class AttentionFinder {
    /** Ops that reshape or scale a tensor without mixing tokens; tracing walks through them. */
    private static final Set<String> PASS_THROUGH = Set.of("Reshape", "Transpose", "Mul", "Div", "Cast", "Squeeze",
            "Unsqueeze", "Identity", "Slice", "Split", "Add", "Sqrt", "Gather");

    /** Initializers, Constant nodes and anything computed only from them or from tensor shapes. */
    private final Constants.DataIndependence constantish = new Constants.DataIndependence();

    /** The kinds of attention, by where queries and keys come from. */
    public enum Kind {
        /** Queries and keys are projected from the same tensor. */
        SELF,
        /** Keys come from another tensor (text embeddings in a UNet). */
        CROSS,
        /** Queries and keys are concatenations of two streams (SD3's MMDiT). */
        JOINT
    }

    /**
     * One attention: the three core nodes, and the projection MatMuls and their inputs where they
     * could be traced to one (null otherwise, and for joint attention, whose q, k and v are each
     * joined from two streams); {@code projections} holds every projection traced, of every stream
     * (q's, then k's, then v's, each once).
     */
    public record Attention(Kind kind, Node scores, Node softmax, Node context, Node qProjection, Node kProjection,
            Node vProjection, Value querySource, Value keySource, List<Node> projections) {
        public Attention {
            projections = List.copyOf(projections);
        }
    }

    public static List<Attention> find(Graph graph) {
        return new AttentionFinder().findAll(graph);
    }

    private List<Attention> findAll(Graph graph) {
        List<Attention> found = new ArrayList<>();
        for (Node softmax : graph.nodes()) {
            if (!softmax.is("Softmax")) {
                continue;
            }
            Node scores = upstreamMatMul(softmax.input(0));
            Node context = downstreamMatMul(softmax.output(0));
            if (scores == null || context == null) {
                continue;
            }
            Trace q = trace(scores.input(0));
            Trace k = trace(scores.input(1));
            Trace v = trace(context.input(1));
            Kind kind = q.throughConcat || k.throughConcat ? Kind.JOINT
                    : q.source != null && q.source == k.source ? Kind.SELF : Kind.CROSS;
            Set<Node> projections = new LinkedHashSet<>();
            for (Trace t : List.of(q, k, v)) {
                projections.addAll(t.projections);
            }
            found.add(new Attention(kind, scores, softmax, context, q.projection(), k.projection(), v.projection(), q.source,
                    k.source, new ArrayList<>(projections)));
        }
        return found;
    }

    /** The MatMul producing the attention scores, looking through scaling, masking and casts. */
    private Node upstreamMatMul(Value v) {
        for (int depth = 0; v != null && depth < 6; depth++) {
            Node p = v.producer();
            if (p == null) {
                return null;
            }
            if (p.is("MatMul")) {
                return p;
            }
            if (!p.is("Mul") && !p.is("Div") && !p.is("Add") && !p.is("Cast") && !p.is("Where")) {
                return null;
            }
            v = tokenInput(p);
        }
        return null;
    }

    /**
     * The MatMul applying the probabilities to v, looking through casts, dropout and the NaN guard
     * torch writes for scaled_dot_product_attention ({@code Where(IsNaN(p), 0, p)}).
     */
    private static Node downstreamMatMul(Value v) {
        for (int depth = 0; v != null && depth < 3; depth++) {
            Node next = null;
            for (Node c : v.consumerNodes()) {
                if (c.is("MatMul") && c.input(0) == v) {
                    return c;
                }
                if (c.is("Cast") || c.is("Dropout") || c.is("Identity") || c.is("Where")) {
                    next = c;
                } else if (!c.is("IsNaN")) {
                    return null;
                }
            }
            v = next == null ? null : next.output(0);
        }
        return null;
    }

    /** Where q, k or v came from: its projection (one, or one per stream through a Concat) and the projection's input. */
    private record Trace(List<Node> projections, Value source, boolean throughConcat) {
        /** The single projection; null through a Concat or when none was found. */
        Node projection() {
            return throughConcat || projections.isEmpty() ? null : projections.get(0);
        }
    }

    private static final int MAX_DEPTH = 16;

    private Trace trace(Value v) {
        return trace(v, 0);
    }

    /** Walks back from q, k or v to the MatMul that projected it from activations; through a Concat, every stream's. */
    private Trace trace(Value v, int start) {
        for (int depth = start; v != null && depth < MAX_DEPTH; depth++) {
            Node p = v.producer();
            if (p == null) {
                return new Trace(List.of(), v, false);
            }
            if ((p.is("MatMul") || p.is("Gemm")) && constantish.test(p.input(1))) {
                return new Trace(List.of(p), p.input(0), false);
            }
            if (p.is("Concat")) {
                List<Node> streams = new ArrayList<>();
                for (Value in : p.inputs()) {
                    if (!constantish.test(in)) {
                        streams.addAll(trace(in, depth + 1).projections);
                    }
                }
                return new Trace(streams, null, true);
            }
            if (!PASS_THROUGH.contains(p.opType()) || !p.domain().isEmpty()) {
                return new Trace(List.of(), v, false);
            }
            v = tokenInput(p);
        }
        return new Trace(List.of(), v, false);
    }

    /** The input of a pass-through op that carries activations (not the constant or shape operand). */
    private Value tokenInput(Node n) {
        for (Value in : n.inputs()) {
            if (in != null && !constantish.test(in)) {
                return in;
            }
        }
        return n.input(0);
    }
}
