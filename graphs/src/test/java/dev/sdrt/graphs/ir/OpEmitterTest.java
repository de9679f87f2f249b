package dev.sdrt.graphs.ir;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class OpEmitterTest {

    private static Graph graph() {
        Graph g = new Graph("g");
        g.addInput("x", DataType.FLOAT, Shape.of(2, 3));
        return g;
    }

    @Test
    void axesAreAnAttributeOrAnInputByOpset() {
        for (long opset : new long[] {11, 13, 17, 18}) {
            Graph g = graph();
            OpEmitter ops = new OpEmitter(g, opset);
            Value x = g.value("x");
            Node unsqueeze = ops.unsqueeze("u", x, 0).producer();
            Node sum = ops.reduce("ReduceSum", "s", x, false, 1).producer();
            Node mean = ops.reduce("ReduceMean", "m", x, true, -1).producer();
            assertThat(unsqueeze.inputCount() == 2).isEqualTo(opset >= 13).isEqualTo(!unsqueeze.hasAttr("axes"));
            assertThat(sum.inputCount() == 2).isEqualTo(opset >= 13).isEqualTo(!sum.hasAttr("axes"));
            assertThat(mean.inputCount() == 2).isEqualTo(opset >= 18).isEqualTo(!mean.hasAttr("axes"));
            assertThat(sum.attrInt("keepdims", -1)).isZero();
            assertThat(mean.attrInt("keepdims", -1)).isOne();
            if (opset >= 18) {
                assertThat(mean.input(1).constant().toLongs()).containsExactly(-1);
            } else {
                assertThat(mean.attrInts("axes")).containsExactly(-1);
            }
        }
    }

    @Test
    void splitSizesAreAnAttributeBefore13() {
        Graph g = graph();
        List<Value> parts = new OpEmitter(g, 11).split("s", g.value("x"), 1, 1, 2);
        assertThat(parts).hasSize(2);
        assertThat(parts.get(0).producer().attrInts("split")).containsExactly(1, 2);
        Graph h = graph();
        Node split = new OpEmitter(h, 17).split("s", h.value("x"), 1, 1, 2).get(0).producer();
        assertThat(split.input(1).constant().toLongs()).containsExactly(1, 2);
        assertThat(split.hasAttr("split")).isFalse();
    }

    @Test
    void namesAreUniqueAndOutputsOfInputsGoThroughIdentity() {
        Graph g = graph();
        OpEmitter ops = new OpEmitter(g, 17);
        Value a = ops.op("Relu", "r", g.value("x"));
        Value b = ops.op("Relu", "r", a);
        assertThat(a.producer().name()).isNotEqualTo(b.producer().name());
        Value out = ops.output("y", g.value("x"), DataType.FLOAT, Shape.of(2, 3), "/y/Identity");
        assertThat(out.producer().opType()).isEqualTo("Identity");
        assertThat(g.outputs()).containsExactly(out);
        assertThat(out.name()).isEqualTo("y");
    }

    @Test
    void constantsSeeInitializersAndConstantNodes() {
        Graph g = graph();
        Value init = g.constant("w", TensorData.vector(1, 2));
        Value node = new OpEmitter(g, 17).op("Constant", "c", List.of(), java.util.Map.of("value", TensorData.vector(3)));
        Value shape = new OpEmitter(g, 17).op("Shape", "shape", g.value("x"));
        Value computed = new OpEmitter(g, 17).op("Add", "add", node, shape);
        assertThat(init.isConstant()).isTrue();
        assertThat(node.isConstant()).isFalse();
        assertThat(Constants.isConstant(init)).isTrue();
        assertThat(Constants.isConstant(node)).isTrue();
        assertThat(Constants.data(node).toLongs()).containsExactly(3);
        assertThat(Constants.isConstant(shape)).isFalse();
        assertThat(Constants.isConstant(null)).isFalse();
        Constants.DataIndependence independent = new Constants.DataIndependence();
        assertThat(independent.test(computed)).isTrue();
        assertThat(independent.test(g.value("x"))).isFalse();
    }
}
