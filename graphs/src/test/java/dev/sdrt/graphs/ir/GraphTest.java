package dev.sdrt.graphs.ir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class GraphTest {

    private static Graph chain() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(4));
        Value a = g.op("Relu", "a", x);
        Value b = g.op("Neg", "b", a);
        g.addOutput(b);
        return g;
    }

    @Test
    void producersAndConsumersFollowMutations() {
        Graph g = chain();
        Value x = g.value("x");
        Node relu = g.nodes().get(0);
        Node neg = g.nodes().get(1);
        assertThat(x.consumers()).containsExactly(relu);
        assertThat(relu.output(0).consumers()).containsExactly(neg);
        assertThat(neg.output(0).producer()).isSameAs(neg);

        neg.setInput(0, x);
        assertThat(relu.output(0).consumers()).isEmpty();
        assertThat(x.consumers()).containsExactly(relu, neg);
    }

    @Test
    void replaceAllUsesRewiresConsumersAndGraphOutputs() {
        Graph g = chain();
        Value negOut = g.outputs().get(0);
        Value sig = g.op("Sigmoid", "s", g.value("x"));
        g.replaceAllUses(negOut, sig);
        assertThat(g.outputs()).containsExactly(sig);
        assertThat(g.cleanup()).isEqualTo(2);
        assertThat(g.nodes()).extracting(Node::opType).containsExactly("Sigmoid");
        assertThat(g.value(negOut.name())).isNull();
    }

    @Test
    void cleanupRemovesDeadNodesAndUnusedInitializersButKeepsInputs() {
        Graph g = chain();
        g.addInitializer("unused", TensorData.scalar(1f));
        Value dead = g.op("Exp", "dead", g.value("x"));
        assertThat(dead.consumers()).isEmpty();
        assertThat(g.cleanup()).isEqualTo(1);
        assertThat(g.value("unused")).isNull();
        assertThat(g.inputs()).extracting(Value::name).containsExactly("x");
    }

    @Test
    void toposortOrdersNodesAfterTheirProducers() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(1));
        Value late = g.newValue("late");
        Node consumer = g.addNode("Neg", "", "consumer", List.of(late), List.of(g.newValue("y")));
        g.addNode("Relu", "", "producer", List.of(x), List.of(late));
        g.addOutput(consumer.output(0));
        g.toposort();
        assertThat(g.nodes()).extracting(Node::name).containsExactly("producer", "consumer");
    }

    @Test
    void toposortReportsCycles() {
        Graph g = new Graph("g");
        Value a = g.newValue("a");
        Value b = g.newValue("b");
        g.addNode("Neg", "", "n1", List.of(b), List.of(a));
        g.addNode("Neg", "", "n2", List.of(a), List.of(b));
        assertThatThrownBy(g::toposort).hasMessageContaining("cycle");
    }

    @Test
    void namesStayUnique() {
        Graph g = chain();
        Value v1 = g.newValue("t");
        Value v2 = g.newValue("t");
        assertThat(v1.name()).isEqualTo("t");
        assertThat(v2.name()).isEqualTo("t_1");
        Node n1 = g.addNode("Relu", "same", List.of(g.value("x")), 1);
        Node n2 = g.addNode("Relu", "same", List.of(g.value("x")), 1);
        assertThat(n1.name()).isNotEqualTo(n2.name());
        assertThatThrownBy(() -> g.addInitializer("x", TensorData.scalar(0f))).hasMessageContaining("already has");
    }

    @Test
    void attributesRoundTripThroughTypedAccessors() {
        Graph g = chain();
        Node n = g.nodes().get(0);
        n.setAttr("i", 3).setAttr("f", 0.5f).setAttr("s", "x").setAttr("ints", new long[] {1, 2})
                .setAttr("t", TensorData.vector(7, 8));
        assertThat(n.attrInt("i", 0)).isEqualTo(3);
        assertThat(n.attrFloat("f", 0)).isEqualTo(0.5f);
        assertThat(n.attrString("s", null)).isEqualTo("x");
        assertThat(n.attrInts("ints")).containsExactly(1, 2);
        assertThat(n.attrTensor("t").toLongs()).containsExactly(7, 8);
        assertThat(n.attrInt("missing", 42)).isEqualTo(42);
    }

    @Test
    void histogramAndParameterCount() {
        Graph g = chain();
        g.addInitializer("w", TensorData.ofFloats(new long[] {2, 3}, new float[6]));
        g.addInitializer("shape", TensorData.vector(1, 2));
        assertThat(g.opHistogram()).containsEntry("Relu", 1).containsEntry("Neg", 1);
        assertThat(g.parameterCount()).isEqualTo(6);
    }
}
