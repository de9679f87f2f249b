package dev.sdrt.graphs.ir;

import static dev.sdrt.graphs.io.Messages.quote;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A mutable ONNX graph: values (inputs, initializers, node outputs) and nodes, with producer and
 * consumer links kept up to date by every mutation. Value and node names are unique.
 */
public final class Graph {
    private String name;
    private final Map<String, Value> values = new LinkedHashMap<>();
    private final List<Node> nodes = new ArrayList<>();
    private final Set<String> nodeNames = new HashSet<>();
    private final List<Value> inputs = new ArrayList<>();
    private final List<Value> outputs = new ArrayList<>();
    private final Map<String, Integer> nameCounters = new HashMap<>();

    public Graph(String name) {
        this.name = name;
    }

    public String name() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }

    // ---- values ----

    public List<Value> inputs() {
        return Collections.unmodifiableList(inputs);
    }

    public List<Value> outputs() {
        return Collections.unmodifiableList(outputs);
    }

    /** The value with this name, or null. */
    public Value value(String valueName) {
        return values.get(valueName);
    }

    public Value requireValue(String valueName) {
        Value v = values.get(valueName);
        if (v == null) {
            throw new IllegalArgumentException("graph " + quote(name) + " has no value named " + quote(valueName));
        }
        return v;
    }

    public Map<String, Value> values() {
        return Collections.unmodifiableMap(values);
    }

    /** Initializers in insertion order. */
    public List<Value> initializers() {
        return values.values().stream().filter(Value::isConstant).toList();
    }

    /** Adds a graph input. */
    public Value addInput(String inputName, DataType type, Shape shape) {
        Value v = newValue(inputName, true);
        v.setTypeAndShape(type, shape);
        inputs.add(v);
        return v;
    }

    public void removeInput(Value v) {
        inputs.remove(v);
    }

    public void addOutput(Value v) {
        checkOwned(v);
        outputs.add(v);
    }

    public void setOutput(int i, Value v) {
        checkOwned(v);
        outputs.set(i, v);
    }

    public void clearOutputs() {
        outputs.clear();
    }

    /** Adds an initializer under exactly this name (fails if taken). */
    public Value addInitializer(String initName, TensorData data) {
        Value v = newValue(initName, true);
        v.setConstant(data);
        return v;
    }

    /** Adds an initializer under a unique name derived from {@code base}. */
    public Value constant(String base, TensorData data) {
        Value v = newValue(base, false);
        v.setConstant(data);
        return v;
    }

    /** A fresh intermediate value with a unique name derived from {@code base}. */
    public Value newValue(String base) {
        return newValue(base, false);
    }

    private Value newValue(String requested, boolean exact) {
        String valueName = exact ? requested : uniqueValueName(requested);
        if (values.containsKey(valueName)) {
            throw new IllegalArgumentException("graph " + quote(name) + " already has a value named " + quote(valueName));
        }
        Value v = new Value(this, valueName);
        values.put(valueName, v);
        return v;
    }

    /** Returns the existing value or creates an intermediate one with exactly that name (used by loaders). */
    public Value valueOrCreate(String valueName) {
        Value v = values.get(valueName);
        return v != null ? v : newValue(valueName, true);
    }

    public String uniqueValueName(String base) {
        return uniqueName(base, values.keySet());
    }

    public String uniqueNodeName(String base) {
        return uniqueName(base, nodeNames);
    }

    private String uniqueName(String base, Set<String> taken) {
        if (!taken.contains(base)) {
            return base;
        }
        int n = nameCounters.getOrDefault(base, 0);
        String candidate;
        do {
            n++;
            candidate = base + "_" + n;
        } while (taken.contains(candidate));
        nameCounters.put(base, n);
        return candidate;
    }

    public void rename(Value v, String newName) {
        checkOwned(v);
        if (v.name().equals(newName)) {
            return;
        }
        if (values.containsKey(newName)) {
            throw new IllegalArgumentException("graph " + quote(name) + " already has a value named " + quote(newName));
        }
        values.remove(v.name());
        v.setNameInternal(newName);
        values.put(newName, v);
    }

    /** Points every consumer (and graph output slot) of {@code old} at {@code replacement}. */
    public void replaceAllUses(Value old, Value replacement) {
        checkOwned(old);
        checkOwned(replacement);
        if (old == replacement) {
            return;
        }
        for (Node consumer : List.copyOf(old.consumers)) {
            for (int i = 0; i < consumer.inputs.size(); i++) {
                if (consumer.inputs.get(i) == old) {
                    consumer.setInput(i, replacement);
                }
            }
            for (int i = 0; i < consumer.implicitInputs.size(); i++) {
                if (consumer.implicitInputs.get(i) == old) {
                    throw new UnsupportedOperationException("value " + quote(old.name()) + " is read inside a subgraph of "
                            + quote(consumer.name()) + "; rewriting it is not supported");
                }
            }
        }
        for (int i = 0; i < outputs.size(); i++) {
            if (outputs.get(i) == old) {
                outputs.set(i, replacement);
            }
        }
    }

    private void checkOwned(Value v) {
        if (v.graph() != this || values.get(v.name()) != v) {
            throw new IllegalArgumentException("value " + quote(v.name()) + " is not part of graph " + quote(name));
        }
    }

    // ---- nodes ----

    public List<Node> nodes() {
        return Collections.unmodifiableList(nodes);
    }

    /**
     * Adds a node with the given inputs and freshly named outputs, appended at the end of the node
     * list (call {@link #toposort()} after inserting nodes out of order).
     */
    public Node addNode(String opType, String nodeName, List<Value> nodeInputs, int outputCount) {
        List<Value> outs = new ArrayList<>(outputCount);
        String base = nodeName == null || nodeName.isEmpty() ? opType : nodeName;
        for (int i = 0; i < outputCount; i++) {
            outs.add(newValue(base + "_output_" + i));
        }
        return addNode(opType, "", nodeName, nodeInputs, outs);
    }

    /** Adds a node writing to existing (unproduced) values. */
    public Node addNode(String opType, String domain, String nodeName, List<Value> nodeInputs, List<Value> nodeOutputs) {
        String unique = uniqueNodeName(nodeName == null || nodeName.isEmpty() ? opType : nodeName);
        Node node = new Node(this, unique, opType, domain);
        for (Value in : nodeInputs) {
            node.addInput(in);
        }
        for (Value out : nodeOutputs) {
            checkOwned(out);
            if (out.producer != null) {
                throw new IllegalArgumentException("value " + quote(out.name()) + " is already produced by node " + quote(out.producer.name()));
            }
            if (out.isConstant()) {
                throw new IllegalArgumentException("value " + quote(out.name()) + " is an initializer; a node cannot produce it");
            }
            out.producer = node;
            node.outputs.add(out);
        }
        nodeNames.add(unique);
        nodes.add(node);
        return node;
    }

    /** One-output convenience: adds the node and returns its output. */
    public Value op(String opType, String nodeName, List<Value> nodeInputs, Map<String, Object> attrs) {
        Node node = addNode(opType, nodeName, nodeInputs, 1);
        if (attrs != null) {
            attrs.forEach(node::setAttr);
        }
        return node.output(0);
    }

    public Value op(String opType, String nodeName, Value... nodeInputs) {
        return op(opType, nodeName, List.of(nodeInputs), null);
    }

    /** Records that a subgraph attribute of {@code node} reads the outer value {@code v} (used by loaders). */
    public void addImplicitInput(Node node, Value v) {
        node.implicitInputs.add(v);
        v.consumers.add(node);
    }

    /** Removes a node; its outputs stay in the graph as unproduced values until cleanup. */
    public void removeNode(Node node) {
        if (!nodes.remove(node)) {
            throw new IllegalArgumentException("node " + quote(node.name()) + " is not in graph " + quote(name));
        }
        node.truncateInputs(0);
        for (Value v : node.implicitInputs) {
            v.consumers.remove(node);
        }
        node.implicitInputs.clear();
        for (Value out : node.outputs) {
            out.producer = null;
        }
        nodeNames.remove(node.name());
    }

    /** Removes a value that nothing produces or reads any more. */
    public void removeValue(Value v) {
        checkOwned(v);
        if (v.producer != null || !v.consumers.isEmpty() || outputs.contains(v)) {
            throw new IllegalStateException("value " + quote(v.name()) + " is still in use");
        }
        inputs.remove(v);
        values.remove(v.name());
    }

    /**
     * Orders nodes so that every node comes after the producers of its inputs (stable: keeps the
     * existing order where it is already valid). Fails on a cycle.
     */
    public void toposort() {
        Map<Node, Integer> pending = new IdentityHashMap<>();
        Map<Node, Integer> position = new IdentityHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            position.put(nodes.get(i), i);
        }
        java.util.PriorityQueue<Node> ready = new java.util.PriorityQueue<>(
                java.util.Comparator.comparingInt(position::get));
        for (Node n : nodes) {
            int deps = 0;
            for (Value in : allInputs(n)) {
                if (in.producer != null) {
                    deps++;
                }
            }
            pending.put(n, deps);
            if (deps == 0) {
                ready.add(n);
            }
        }
        List<Node> sorted = new ArrayList<>(nodes.size());
        while (!ready.isEmpty()) {
            Node n = ready.poll();
            sorted.add(n);
            for (Value out : n.outputs) {
                for (Node c : out.consumers) {
                    int left = pending.merge(c, -1, Integer::sum);
                    if (left == 0) {
                        ready.add(c);
                    }
                }
            }
        }
        if (sorted.size() != nodes.size()) {
            List<String> stuck = nodes.stream().filter(n -> pending.get(n) > 0).map(n -> quote(n.name())).limit(5).toList();
            throw new IllegalStateException("graph " + quote(name) + " has a cycle near nodes " + String.join(", ", stuck));
        }
        nodes.clear();
        nodes.addAll(sorted);
    }

    private static List<Value> allInputs(Node n) {
        List<Value> all = new ArrayList<>();
        for (Value v : n.inputs) {
            if (v != null) {
                all.add(v);
            }
        }
        all.addAll(n.implicitInputs);
        return all;
    }

    /**
     * Removes nodes that contribute to no graph output, then values nothing uses (initializers and
     * intermediates; graph inputs are kept). Returns the number of nodes removed.
     */
    public int cleanup() {
        Set<Node> live = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        Deque<Value> work = new ArrayDeque<>(outputs);
        Set<Value> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        while (!work.isEmpty()) {
            Value v = work.pop();
            if (!seen.add(v)) {
                continue;
            }
            Node p = v.producer;
            if (p != null && live.add(p)) {
                work.addAll(allInputs(p));
            }
        }
        int removed = 0;
        for (Node n : List.copyOf(nodes)) {
            if (!live.contains(n)) {
                removeNode(n);
                removed++;
            }
        }
        for (Value v : List.copyOf(values.values())) {
            if (v.producer == null && v.consumers.isEmpty() && !outputs.contains(v) && !inputs.contains(v)) {
                values.remove(v.name());
            }
        }
        return removed;
    }

    /** Counts nodes per op type (domain-qualified when not the default domain). */
    public Map<String, Integer> opHistogram() {
        Map<String, Integer> histogram = new java.util.TreeMap<>();
        for (Node n : nodes) {
            String key = n.domain().isEmpty() ? n.opType() : n.domain() + "::" + n.opType();
            histogram.merge(key, 1, Integer::sum);
        }
        return histogram;
    }

    /** Number of parameters: elements of all floating-point initializers. */
    public long parameterCount() {
        long count = 0;
        for (Value v : values.values()) {
            if (v.isConstant() && v.constant().type().isFloatingPoint()) {
                count += v.constant().numElements();
            }
        }
        return count;
    }
}
