package dev.sdrt.graphs.ir;

import dev.sdrt.graphs.io.Messages;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A named tensor in a graph: a graph input, an initializer (constant data) or a node output.
 * Type and shape are known when the source model, a builder or shape inference said so.
 */
public final class Value {
    private final Graph graph;
    private String name;
    private DataType type;
    private Shape shape;
    private TensorData constant;
    Node producer;
    final List<Node> consumers = new ArrayList<>();

    Value(Graph graph, String name) {
        this.graph = graph;
        this.name = name;
    }

    public Graph graph() {
        return graph;
    }

    public String name() {
        return name;
    }

    void setNameInternal(String name) {
        this.name = name;
    }

    public DataType type() {
        return constant != null ? constant.type() : type;
    }

    public Value setType(DataType type) {
        this.type = type;
        return this;
    }

    public Shape shape() {
        return constant != null ? Shape.of(constant.dims()) : shape;
    }

    public Value setShape(Shape shape) {
        this.shape = shape;
        return this;
    }

    public Value setTypeAndShape(DataType type, Shape shape) {
        this.type = type;
        this.shape = shape;
        return this;
    }

    /** Constant data when this value is an initializer, else null (see {@link #constantData()}). */
    public TensorData constant() {
        return constant;
    }

    /**
     * Whether this value is an initializer. A Constant node's output is not one: {@link
     * #hasConstantData()} covers both, and {@link Constants} says what else counts as constant.
     */
    public boolean isConstant() {
        return constant != null;
    }

    /**
     * The data this value holds whatever the graph inputs: an initializer's, or the {@code value}
     * tensor of the Constant node that produces it; null for anything else (Constant nodes with
     * {@code value_float}, {@code value_ints}... included).
     */
    public TensorData constantData() {
        if (constant != null) {
            return constant;
        }
        return producer != null && producer.is("Constant") && producer.hasAttr("value") ? producer.attrTensor("value") : null;
    }

    /** Whether {@link #constantData()} is known: an initializer or a Constant node's {@code value}. */
    public boolean hasConstantData() {
        return constant != null || producer != null && producer.is("Constant") && producer.hasAttr("value");
    }

    /** Replaces the data of an initializer (same name, same uses). */
    public void setConstant(TensorData data) {
        if (producer != null) {
            throw new IllegalStateException("value " + Messages.quote(name) + " is produced by node " + Messages.quote(producer.name()) + "; it cannot be constant");
        }
        this.constant = data;
    }

    public boolean isGraphInput() {
        return graph.inputs().contains(this);
    }

    public boolean isGraphOutput() {
        return graph.outputs().contains(this);
    }

    /** The node that computes this value, or null for graph inputs and initializers. */
    public Node producer() {
        return producer;
    }

    /** Nodes that read this value, once per use (a node reading it twice is listed twice). */
    public List<Node> consumers() {
        return Collections.unmodifiableList(consumers);
    }

    /** Distinct consuming nodes. */
    public List<Node> consumerNodes() {
        return consumers.stream().distinct().toList();
    }

    /** The single consumer, or null when there are none or several. */
    public Node soleConsumer() {
        List<Node> distinct = consumerNodes();
        return distinct.size() == 1 && !isGraphOutput() ? distinct.get(0) : null;
    }

    @Override
    public String toString() {
        return name + (type() != null ? ":" + type() : "") + (shape() != null ? shape().toString() : "");
    }
}
