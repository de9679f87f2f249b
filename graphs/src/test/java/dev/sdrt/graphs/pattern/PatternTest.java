package dev.sdrt.graphs.pattern;

import static dev.sdrt.graphs.pattern.Patterns.any;
import static dev.sdrt.graphs.pattern.Patterns.constant;
import static dev.sdrt.graphs.pattern.Patterns.op;
import static dev.sdrt.graphs.pattern.Patterns.producedBy;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.List;
import org.junit.jupiter.api.Test;

class PatternTest {

    /** x @ w + b, with the Add written bias-first, and an unrelated MatMul of two inputs. */
    private static Graph graph() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 3));
        Value y = g.addInput("y", DataType.FLOAT, Shape.of(3, 3));
        Value w = g.addInitializer("w", TensorData.ofFloats(new long[] {3, 3}, new float[9]));
        Value b = g.addInitializer("b", TensorData.ofFloats(new long[] {3}, new float[3]));
        Value mm = g.op("MatMul", "mm", x, w);
        Value add = g.op("Add", "add", b, mm);
        Value other = g.op("MatMul", "mm2", add, y);
        g.addOutput(other);
        return g;
    }

    @Test
    void linearWithBiasMatchesInEitherOperandOrder() {
        NodePattern linear = op("Add").as("add").inputsAnyOrder(
                producedBy(op("MatMul").as("mm").in(0, any().as("x")).in(1, constant().rank(2).as("w"))),
                constant().rank(1).as("b"));
        List<Match> found = linear.findAll(graph());
        assertThat(found).hasSize(1);
        Match m = found.get(0);
        assertThat(m.node("mm").name()).isEqualTo("mm");
        assertThat(m.value("x").name()).isEqualTo("x");
        assertThat(m.value("w").name()).isEqualTo("w");
        assertThat(m.value("b").name()).isEqualTo("b");
    }

    @Test
    void constantRequirementRejectsGraphInputs() {
        NodePattern mmConst = op("MatMul").in(1, constant());
        assertThat(mmConst.findAll(graph())).extracting(mt -> mt.nodes().size()).hasSize(1);
    }

    @Test
    void repeatedLabelMustBindTheSameValue() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2));
        Value z = g.addInput("z", DataType.FLOAT, Shape.of(2));
        g.addOutput(g.op("Mul", "square", x, x));
        g.addOutput(g.op("Mul", "product", x, z));
        NodePattern square = op("Mul").as("n").in(0, any().as("v")).in(1, any().as("v"));
        assertThat(square.findAll(g)).extracting(m -> m.node("n").name()).containsExactly("square");
    }

    @Test
    void soleConsumerAndAttributeConditions() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 3));
        Value t = g.op("Transpose", "t", x);
        g.nodes().get(0).setAttr("perm", new long[] {1, 0});
        g.addOutput(g.op("Relu", "r1", t));
        g.addOutput(g.op("Relu", "r2", t));
        assertThat(op("Transpose").soleConsumer().findAll(g)).isEmpty();
        assertThat(op("Transpose").where(n -> n.attrInts("perm")[0] == 1).findAll(g)).hasSize(1);
        assertThat(op("Relu").in(0, producedBy(op("Transpose")).shape(s -> s.rank() == 2)).findAll(g)).isEmpty();
    }
}
