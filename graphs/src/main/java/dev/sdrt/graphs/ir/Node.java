package dev.sdrt.graphs.ir;

import ai.onnx.proto.OnnxMl.AttributeProto;
import dev.sdrt.graphs.io.Messages;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** One operator application. Inputs may contain null for an omitted optional input. */
public final class Node {
    private final Graph graph;
    private String name;
    private final String opType;
    private final String domain;
    final List<Value> inputs = new ArrayList<>();
    final List<Value> outputs = new ArrayList<>();
    /**
     * By name, so a saved model does not depend on the order attributes were set in: builders pass
     * {@code Map.of(...)}, whose iteration order changes from one JVM run to the next.
     */
    private final Map<String, AttributeProto> attributes = new TreeMap<>();
    /** Outer-scope values read inside subgraph attributes (If/Loop bodies), so cleanup keeps their producers. */
    final List<Value> implicitInputs = new ArrayList<>();

    Node(Graph graph, String name, String opType, String domain) {
        this.graph = graph;
        this.name = name;
        this.opType = opType;
        this.domain = domain == null ? "" : domain;
    }

    public Graph graph() {
        return graph;
    }

    public String name() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }

    public String opType() {
        return opType;
    }

    public String domain() {
        return domain;
    }

    public boolean is(String op) {
        return opType.equals(op) && domain.isEmpty();
    }

    public List<Value> inputs() {
        return Collections.unmodifiableList(inputs);
    }

    public List<Value> outputs() {
        return Collections.unmodifiableList(outputs);
    }

    public List<Value> implicitInputs() {
        return Collections.unmodifiableList(implicitInputs);
    }

    /** Input i, or null when absent or omitted. */
    public Value input(int i) {
        return i < inputs.size() ? inputs.get(i) : null;
    }

    public Value output(int i) {
        return outputs.get(i);
    }

    public int inputCount() {
        return inputs.size();
    }

    /** Replaces input i (null omits it), keeping consumer lists right. */
    public void setInput(int i, Value v) {
        while (inputs.size() <= i) {
            inputs.add(null);
        }
        Value old = inputs.get(i);
        if (old != null) {
            old.consumers.remove(this);
        }
        inputs.set(i, v);
        if (v != null) {
            checkSameGraph(v);
            v.consumers.add(this);
        }
    }

    public void addInput(Value v) {
        setInput(inputs.size(), v);
    }

    /** Removes trailing inputs from index i on. */
    public void truncateInputs(int count) {
        while (inputs.size() > count) {
            Value old = inputs.remove(inputs.size() - 1);
            if (old != null) {
                old.consumers.remove(this);
            }
        }
    }

    void checkSameGraph(Value v) {
        if (v.graph() != graph) {
            throw new IllegalArgumentException("value " + Messages.quote(v.name()) + " belongs to another graph");
        }
    }

    // ---- attributes ----

    public Map<String, AttributeProto> attributes() {
        return Collections.unmodifiableMap(attributes);
    }

    public boolean hasAttr(String key) {
        return attributes.containsKey(key);
    }

    public AttributeProto attr(String key) {
        return attributes.get(key);
    }

    public long attrInt(String key, long defaultValue) {
        AttributeProto a = attributes.get(key);
        return a == null ? defaultValue : a.getI();
    }

    public float attrFloat(String key, float defaultValue) {
        AttributeProto a = attributes.get(key);
        return a == null ? defaultValue : a.getF();
    }

    public String attrString(String key, String defaultValue) {
        AttributeProto a = attributes.get(key);
        return a == null ? defaultValue : a.getS().toStringUtf8();
    }

    /** INTS attribute, or null when absent. */
    public long[] attrInts(String key) {
        AttributeProto a = attributes.get(key);
        return a == null ? null : a.getIntsList().stream().mapToLong(Long::longValue).toArray();
    }

    public float[] attrFloats(String key) {
        AttributeProto a = attributes.get(key);
        if (a == null) {
            return null;
        }
        float[] out = new float[a.getFloatsCount()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.getFloats(i);
        }
        return out;
    }

    /** TENSOR attribute (e.g. Constant's value), or null when absent. */
    public TensorData attrTensor(String key) {
        AttributeProto a = attributes.get(key);
        return a == null ? null : TensorProtos.fromProto(a.getT(), null);
    }

    /** Sets an attribute from a Java value: Long/Integer, Float/Double, String, long[], int[], float[], String[], TensorData. */
    public Node setAttr(String key, Object value) {
        attributes.put(key, Attributes.of(key, value));
        return this;
    }

    public Node setAttr(AttributeProto proto) {
        attributes.put(proto.getName(), proto);
        return this;
    }

    public Node removeAttr(String key) {
        attributes.remove(key);
        return this;
    }

    @Override
    public String toString() {
        return opType + "(" + name + ": " + inputs.stream().map(v -> v == null ? "" : v.name()).toList() + " -> "
                + outputs.stream().map(Value::name).toList() + ")";
    }
}
