package dev.sdrt.graphs.pattern;

import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import java.util.HashMap;
import java.util.Map;

/** The nodes and values a pattern bound to its labels. */
public final class Match {
    private final Map<String, Node> nodes;
    private final Map<String, Value> values;

    Match() {
        this(new HashMap<>(), new HashMap<>());
    }

    private Match(Map<String, Node> nodes, Map<String, Value> values) {
        this.nodes = nodes;
        this.values = values;
    }

    Match copy() {
        return new Match(new HashMap<>(nodes), new HashMap<>(values));
    }

    void restore(Match saved) {
        nodes.clear();
        nodes.putAll(saved.nodes);
        values.clear();
        values.putAll(saved.values);
    }

    /** Binds a label; false when it is already bound to something else. */
    boolean bind(String label, Node n) {
        Node existing = nodes.putIfAbsent(label, n);
        return existing == null || existing == n;
    }

    boolean bind(String label, Value v) {
        Value existing = values.putIfAbsent(label, v);
        return existing == null || existing == v;
    }

    public Node node(String label) {
        Node n = nodes.get(label);
        if (n == null) {
            throw new IllegalArgumentException("no node bound to label '" + label + "'");
        }
        return n;
    }

    public Value value(String label) {
        Value v = values.get(label);
        if (v == null) {
            throw new IllegalArgumentException("no value bound to label '" + label + "'");
        }
        return v;
    }

    public boolean hasValue(String label) {
        return values.containsKey(label);
    }

    public Map<String, Node> nodes() {
        return Map.copyOf(nodes);
    }
}
