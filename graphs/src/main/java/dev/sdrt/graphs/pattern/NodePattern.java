package dev.sdrt.graphs.pattern;

import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Describes a node by op type, attributes and the structure behind its inputs. Matching walks from
 * a root node back through producers, binding labels as it goes.
 *
 * <pre>{@code
 * NodePattern qk = Patterns.op("MatMul").as("qk")
 *     .in(0, Patterns.any().as("q"))
 *     .in(1, Patterns.producedBy(Patterns.op("Transpose")).as("kT"));
 * for (Match m : qk.findAll(graph)) { ... m.node("qk") ... m.value("q") ... }
 * }</pre>
 */
public final class NodePattern {
    private final Set<String> opTypes;
    private String label;
    private final List<InputRule> inputs = new ArrayList<>();
    private final List<Predicate<Node>> conditions = new ArrayList<>();
    private boolean soleConsumer;

    private record InputRule(int index, ValuePattern pattern, boolean commutative) {
    }

    NodePattern(Set<String> opTypes) {
        this.opTypes = opTypes;
    }

    /** Binds the matched node to {@code label}. */
    public NodePattern as(String label) {
        this.label = label;
        return this;
    }

    /** Input {@code index} must match {@code pattern}. */
    public NodePattern in(int index, ValuePattern pattern) {
        inputs.add(new InputRule(index, pattern, false));
        return this;
    }

    /** For a commutative binary op: inputs 0 and 1 match {@code a} and {@code b} in either order. */
    public NodePattern inputsAnyOrder(ValuePattern a, ValuePattern b) {
        inputs.add(new InputRule(0, a, true));
        inputs.add(new InputRule(1, b, true));
        return this;
    }

    public NodePattern where(Predicate<Node> condition) {
        conditions.add(condition);
        return this;
    }

    /** An INT attribute must have this value (absent attributes use {@code defaultValue}). */
    public NodePattern attr(String key, long expected, long defaultValue) {
        return where(n -> n.attrInt(key, defaultValue) == expected);
    }

    /** The node's first output must feed exactly one node and not be a graph output (so it can be rewritten away). */
    public NodePattern soleConsumer() {
        this.soleConsumer = true;
        return this;
    }

    /** Tries to match at {@code node}; on success returns the bindings. */
    public Optional<Match> match(Node node) {
        Match m = new Match();
        return matches(node, m) ? Optional.of(m) : Optional.empty();
    }

    /** All matches rooted at nodes of {@code graph}, in node order. */
    public List<Match> findAll(Graph graph) {
        List<Match> out = new ArrayList<>();
        for (Node n : graph.nodes()) {
            match(n).ifPresent(out::add);
        }
        return out;
    }

    boolean matches(Node node, Match m) {
        if (node == null || !node.domain().isEmpty() || !opTypes.contains(node.opType())) {
            return false;
        }
        if (soleConsumer && node.output(0).soleConsumer() == null) {
            return false;
        }
        for (Predicate<Node> c : conditions) {
            if (!c.test(node)) {
                return false;
            }
        }
        Match saved = m.copy();
        if (label != null && !m.bind(label, node)) {
            return false;
        }
        for (int r = 0; r < inputs.size(); r++) {
            InputRule rule = inputs.get(r);
            if (rule.commutative()) {
                InputRule other = inputs.get(++r);
                if (!matchPair(node, rule.pattern(), other.pattern(), m)) {
                    m.restore(saved);
                    return false;
                }
            } else if (!rule.pattern().matches(node.input(rule.index()), m)) {
                m.restore(saved);
                return false;
            }
        }
        return true;
    }

    private static boolean matchPair(Node node, ValuePattern a, ValuePattern b, Match m) {
        Match saved = m.copy();
        if (a.matches(node.input(0), m) && b.matches(node.input(1), m)) {
            return true;
        }
        m.restore(saved);
        if (a.matches(node.input(1), m) && b.matches(node.input(0), m)) {
            return true;
        }
        m.restore(saved);
        return false;
    }
}
