package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShapeInferenceTest {

    @Test
    void infersShapesOfBuiltGraph() {
        OnnxModel m = TinyModels.linearRelu();
        for (Value v : m.graph().values().values()) {
            if (v.producer() != null) {
                v.setTypeAndShape(null, null);
            }
        }
        OnnxChecker.inferShapes(m);
        Node add = m.graph().nodes().get(1);
        assertThat(add.output(0).type()).isEqualTo(DataType.FLOAT);
        assertThat(add.output(0).shape()).isEqualTo(Shape.of(2, 4));
    }

    @Test
    void infersEveryIntermediateOfTheFixtureUnet() throws Exception {
        OnnxModel m = OnnxModel.load(Fixtures.model("tiny_sd_unet").resolve("model.onnx"));
        OnnxChecker.inferShapes(m);
        long known = m.graph().nodes().stream().filter(n -> n.output(0).type() != null).count();
        assertThat(known).isEqualTo(m.graph().nodes().size());
        assertThat(m.graph().outputs().get(0).shape().toArray()).containsExactly(2, 4, 16, 16);
    }

    @Test
    void checkerNamesTheProblem(@TempDir Path tmp) throws Exception {
        Graph g = new Graph("bad");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2));
        Value y = g.op("NoSuchOp", "mystery", x);
        y.setTypeAndShape(DataType.FLOAT, Shape.of(2));
        g.addOutput(y);
        Path file = tmp.resolve("bad.onnx");
        new OnnxModel(g, 17).save(file);
        assertThat(Files.exists(file)).isTrue();
        assertThatThrownBy(() -> OnnxChecker.check(file)).isInstanceOf(OnnxChecker.OnnxCheckException.class)
                .hasMessageContaining("NoSuchOp");
    }
}
