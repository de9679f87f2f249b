package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StaticShapesPassTest {
    @TempDir
    Path dir;

    /**
     * The shape arithmetic an exporter writes for a dynamic attention input, with the stale
     * symbolic shapes a first inference left on its values:
     *
     * <pre>
     * x [batch, 4, height, width]
     * s = Shape(x); tokens = Mul(Gather(s, 2), Gather(s, 3))
     * t = Transpose(Reshape(x, Concat(Gather(s, 0), 4, tokens)), [0, 2, 1])   [batch, unk__0, 4]
     * y = MatMul(t, w [4, 3])                                                   [batch, height*width, 3]
     * </pre>
     */
    static OnnxModel tokens() {
        Graph g = new Graph("tokens");
        Value x = g.addInput("x", DataType.FLOAT, Shape.mixed("batch", 4, "height", "width"));
        Value s = g.op("Shape", "s", x);
        Value b = g.op("Unsqueeze", "b", g.op("Gather", "g0", s, g.constant("i0", TensorData.scalar(0L))),
                g.constant("ax0", TensorData.vector(0)));
        Value h = g.op("Gather", "g2", s, g.constant("i2", TensorData.scalar(2L)));
        Value w = g.op("Gather", "g3", s, g.constant("i3", TensorData.scalar(3L)));
        Value n = g.op("Unsqueeze", "n", g.op("Mul", "hw", h, w), g.constant("ax0b", TensorData.vector(0)));
        Value shape = g.op("Concat", "shape", List.of(b, g.constant("four", TensorData.vector(4)), n), Map.of("axis", 0L));
        Value flat = g.op("Reshape", "flat", x, shape);
        flat.setTypeAndShape(DataType.FLOAT, Shape.mixed("batch", 4, "unk__0"));
        Value t = g.op("Transpose", "t", List.of(flat), Map.of("perm", new long[] {0, 2, 1}));
        g.rename(t, "t");
        t.setTypeAndShape(DataType.FLOAT, Shape.mixed("batch", "unk__0", 4));
        float[] weights = new float[12];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = 0.25f * (i - 5);
        }
        Value y = g.op("MatMul", "proj", t, g.constant("w", TensorData.ofFloats(new long[] {4, 3}, weights)));
        g.rename(y, "y");
        y.setTypeAndShape(DataType.FLOAT, Shape.mixed("batch", "height*width", 3));
        g.addOutput(y);
        return new OnnxModel(g, 17);
    }

    @Test
    void pinsInputDimensionsAndEveryIntermediateShapeFollows() throws Exception {
        OnnxModel model = tokens();
        Graph g = model.graph();
        Map<String, Tensor> before = run(model, 2, 3, 5);

        PassResult result = PassPipeline.parse("static-shapes:batch=2:height=3:width=5").run(model).get(0);

        assertThat(result.pass()).isEqualTo("static-shapes");
        assertThat(result.matched()).isEqualTo(3);
        assertThat(result.changes()).isPositive();
        assertThat(result.nodesAfter()).isEqualTo(result.nodesBefore());
        assertThat(result.notes().get(0)).startsWith("pinned batch=2, height=3, width=5");
        assertThat(g.value("x").shape()).isEqualTo(Shape.of(2, 4, 3, 5));
        assertThat(g.value("y").shape()).isEqualTo(Shape.of(2, 15, 3));
        for (Value v : g.values().values()) {
            assertThat(v.shape()).as(v.name()).isNotNull();
            assertThat(v.shape().isFullyFixed()).as(v.name() + " " + v.shape()).isTrue();
        }
        assertThat(g.value("t").shape()).isEqualTo(Shape.of(2, 15, 4));
        assertThat(model.metadata()).containsEntry(StaticShapesPass.METADATA_KEY, "batch=2;height=3;width=5");

        Path file = PassTesting.save(model, dir);
        OnnxChecker.check(file);
        assertThat(PassTesting.maxRelDiff(run(model, 2, 3, 5), before)).isZero();

        // again: nothing left to pin, nothing changes
        PassResult again = PassPipeline.parse("static-shapes:batch=2:height=3:width=5").run(model).get(0);
        assertThat(again.changes()).isZero();
        assertThat(again.matched()).isZero();
        assertThat(again.notes()).containsExactly("already pinned: batch=2, height=3, width=5");

        // cleanup now folds the shape arithmetic away
        new CleanupPass().apply(model);
        assertThat(g.opHistogram()).doesNotContainKeys("Shape", "Gather", "Concat");
        assertThat(PassTesting.maxRelDiff(run(model, 2, 3, 5), before)).isZero();
    }

    @Test
    void pinsSomeDimensionsAndLeavesTheOthersSymbolic() {
        OnnxModel model = tokens();

        PassResult result = new StaticShapesPass(Map.of("batch", 1L)).apply(model);

        assertThat(result.matched()).isEqualTo(1);
        assertThat(model.graph().value("x").shape()).isEqualTo(Shape.mixed(1, 4, "height", "width"));
        assertThat(model.graph().value("y").shape().dim(0).value()).isEqualTo(1);
        assertThat(result.notes()).contains("left symbolic: height, width, height*width");

        // a later run pins the rest, and the record holds both
        new StaticShapesPass(Map.of("height", 2L, "width", 2L)).apply(model);
        assertThat(model.graph().value("y").shape()).isEqualTo(Shape.of(1, 4, 3));
        assertThat(model.metadata().get(StaticShapesPass.METADATA_KEY)).startsWith("batch=1;");
    }

    @Test
    void unknownNamesAndConflictingPinsAreErrorsThatListTheDimensions() {
        OnnxModel model = tokens();
        assertThatThrownBy(() -> PassPipeline.parse("static-shapes:batch=2:frames=8").run(model))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("static-shapes: the graph has no symbolic dimension named 'frames'; its symbolic dimensions are"
                        + " batch (x, y), height (x), width (x), height*width (y)");
        assertThat(model.graph().value("x").shape()).as("nothing pinned").isEqualTo(Shape.mixed("batch", 4, "height", "width"));

        new StaticShapesPass(Map.of("batch", 2L)).apply(model);
        assertThatThrownBy(() -> new StaticShapesPass(Map.of("batch", 4L)).apply(model))
                .hasMessageContaining("batch was pinned to 2 before").hasMessageContaining("cannot pin it to 4");
        assertThatThrownBy(() -> new StaticShapesPass(Map.of("sequence", 77L)).apply(model))
                .hasMessageContaining("no symbolic dimension named 'sequence'").hasMessageContaining("pinned before: batch=2");
    }

    @Test
    void sizesThatShapeInferenceRejectsLeaveTheGraphAsItWas() {
        Graph g = new Graph("pair");
        Value a = g.addInput("a", DataType.FLOAT, Shape.mixed("n"));
        Value b = g.addInput("b", DataType.FLOAT, Shape.of(3));
        Value sum = g.op("Add", "add", a, b);
        g.rename(sum, "sum");
        sum.setTypeAndShape(DataType.FLOAT, Shape.of(3));
        g.addOutput(sum);
        OnnxModel model = new OnnxModel(g, 17);

        assertThatThrownBy(() -> new StaticShapesPass(Map.of("n", 4L)).apply(model))
                .hasMessageStartingWith("static-shapes: shape inference rejects n=4");
        assertThat(a.shape()).isEqualTo(Shape.mixed("n"));
        assertThat(model.metadata()).doesNotContainKey(StaticShapesPass.METADATA_KEY);
    }

    @Test
    void parsesItsOptions() {
        StaticShapesPass pass = (StaticShapesPass) PassPipeline.parse("static-shapes:batch=2:height=64:width=64").passes().get(0);
        assertThat(pass.pins()).containsExactlyInAnyOrderEntriesOf(Map.of("batch", 2L, "height", 64L, "width", 64L));
        assertThatThrownBy(() -> PassPipeline.parse("static-shapes")).hasMessageContaining("needs at least one name=value");
        assertThatThrownBy(() -> PassPipeline.parse("static-shapes:batch=two")).hasMessageContaining("positive integer");
        assertThatThrownBy(() -> PassPipeline.parse("static-shapes:batch=0")).hasMessageContaining("positive integer");
        assertThatThrownBy(() -> PassPipeline.parse("static-shapes:batch")).hasMessageContaining("is not key=value")
                .hasMessageContaining("NAME=VALUE");
    }

    private Map<String, Tensor> run(OnnxModel model, int batch, int height, int width) {
        Path file = PassTesting.save(model, dir);
        float[] x = new float[batch * 4 * height * width];
        Random random = new Random(7);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            return runner.run(Map.of("x", Tensor.ofFloats(new long[] {batch, 4, height, width}, x)));
        }
    }
}
