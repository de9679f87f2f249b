package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.ort.OrtOptLevel;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CleanupPassTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text", "tiny_sd3_transformer"})
    void foldsShapeArithmeticExactlyAndOnce(String fixture) {
        OnnxModel model = PassTesting.load(fixture);
        int nodesBefore = model.graph().nodes().size();

        PassResult first = new CleanupPass().apply(model);

        Graph g = model.graph();
        assertThat(first.nodesRemoved()).isPositive();
        assertThat(first.nodesAfter()).isEqualTo(g.nodes().size()).isLessThan(nodesBefore);
        // the fixtures have fixed input shapes: every Shape and Constant folds into an initializer
        assertThat(g.opHistogram()).doesNotContainKeys("Shape", "Constant", "Identity");
        Map<String, Tensor> outputs = PassTesting.run(model, fixture, dir);
        assertThat(PassTesting.maxRelDiff(outputs, PassTesting.originalOutputs(fixture))).isLessThanOrEqualTo(PassTesting.EXACT);
        OnnxChecker.check(PassTesting.save(model, dir));

        PassResult second = new CleanupPass().apply(model);
        assertThat(second.changes()).isZero();
        assertThat(second.matched()).isZero();
        assertThat(g.nodes()).hasSize(first.nodesAfter());
    }

    /** x → Identity → Dropout → Cast(to=float) → Div(1) → Add(zeros[4]) → y: all of it is x, and y keeps its name. */
    @Test
    void removesNoOpsAndKeepsTheOutputName() {
        Graph g = new Graph("noops");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 4));
        Value relu = g.op("Relu", "relu", x);
        Value v = g.op("Identity", "id", relu);
        v = g.op("Dropout", "drop", v);
        v = g.op("Cast", "cast", List.of(v), Map.of("to", (long) DataType.FLOAT.onnxCode()));
        v = g.op("Div", "div", v, g.constant("one", TensorData.scalar(1f)));
        v = g.op("Add", "add", g.constant("zeros", TensorData.ofFloats(new long[] {4}, 0, 0, 0, 0)), v);
        g.rename(v, "y");
        g.addOutput(v);
        OnnxModel model = new OnnxModel(g, 17);

        PassResult result = new CleanupPass().apply(model);

        assertThat(g.nodes()).extracting(Node::opType).containsExactly("Relu");
        assertThat(g.outputs().get(0).name()).isEqualTo("y");
        assertThat(g.outputs().get(0).producer().name()).isEqualTo("relu");
        assertThat(g.initializers()).isEmpty();
        assertThat(result.nodesRemoved()).isEqualTo(5);
    }

    /** Add(x[4], zeros[2,4]) broadcasts x to [2,4]: not a no-op. A Shape of a symbolic dimension stays. */
    @Test
    void keepsBroadcastingAddsAndSymbolicShapes() {
        Graph g = new Graph("keeps");
        Value x = g.addInput("x", DataType.FLOAT, Shape.mixed("batch", 4));
        Value wide = g.op("Add", "add", x, g.constant("zeros", TensorData.ofFloats(new long[] {3, 1, 4}, new float[12])));
        Value shape = g.op("Shape", "shape", x);
        Value back = g.op("Reshape", "reshape", wide, g.op("Concat", "concat", List.of(
                g.constant("three", TensorData.vector(3)), shape), Map.of("axis", 0L)));
        g.rename(back, "y");
        g.addOutput(back);
        OnnxModel model = new OnnxModel(g, 17);

        PassResult result = new CleanupPass().apply(model);

        assertThat(result.changes()).isZero();
        assertThat(g.opHistogram()).containsEntry("Add", 1).containsEntry("Shape", 1).containsEntry("Concat", 1);
    }

    /**
     * Every foldable op on constants, as torch might write them, folds to what ONNX Runtime computes:
     *
     * <pre>
     * s = Shape(x)                                    [2, 3, 4]
     * shape = Concat(Squeeze(Unsqueeze(Unsqueeze(Gather(s, 0), [0]), [1]), [1]),
     *                Sub(Add(Unsqueeze(Mul(Gather(Slice(s, 1, 3), 0), Gather(Slice(s, 1, 3), 1)), [0]), 5), 5))
     * bias = Reshape(Expand(Reshape(c4, [1, 4]), [3, 1]), [12])
     * half = Cast(Div(Cast(s, float), 2), int64)      [1, 1, 2]
     * t = Cast(Gather(Where(Equal(half, 1), 10, 20), 2), float)
     * y = (Reshape(x, shape) + bias) / t
     * </pre>
     */
    @Test
    void foldsEveryOpAsOnnxRuntimeComputesIt() {
        Graph g = new Graph("folds");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 3, 4));
        Value s = g.op("Shape", "s", x);
        Value first = g.op("Gather", "first", s, g.constant("zero", TensorData.scalar(0L)));
        Value lead = g.op("Unsqueeze", "lead", first, g.constant("ax0", TensorData.vector(0)));
        lead = g.op("Squeeze", "squeeze", g.op("Unsqueeze", "unsq", lead, g.constant("ax1", TensorData.vector(1))),
                g.constant("ax1b", TensorData.vector(1)));
        Value tail = g.op("Slice", "tail", s, g.constant("from", TensorData.vector(1)), g.constant("to", TensorData.vector(3)));
        Value product = g.op("Mul", "product", g.op("Gather", "g0", tail, g.constant("i0", TensorData.scalar(0L))),
                g.op("Gather", "g1", tail, g.constant("i1", TensorData.scalar(1L))));
        Value five = g.constant("five", TensorData.vector(5));
        Value rest = g.op("Sub", "sub", g.op("Add", "add5", g.op("Unsqueeze", "unsq2", product,
                g.constant("ax0b", TensorData.vector(0))), five), five);
        Value shape = g.op("Concat", "shape", List.of(lead, rest), Map.of("axis", 0L));
        Value c4 = g.constant("c4", TensorData.ofFloats(new long[] {4}, 0.5f, 1.5f, 2.5f, 3.5f));
        Value bias = g.op("Reshape", "flat", g.op("Expand", "expand", g.op("Reshape", "row", c4,
                g.constant("row_shape", TensorData.vector(1, 4))), g.constant("rows", TensorData.vector(3, 1))),
                g.constant("flat_shape", TensorData.vector(12)));
        Value half = g.op("Cast", "to_int", List.of(g.op("Div", "halve", g.op("Cast", "to_float", List.of(s),
                Map.of("to", (long) DataType.FLOAT.onnxCode())), g.constant("two", TensorData.scalar(2f)))),
                Map.of("to", (long) DataType.INT64.onnxCode()));
        Value picked = g.op("Where", "where", g.op("Equal", "eq", half, g.constant("one", TensorData.scalar(1L))),
                g.constant("ten", TensorData.scalar(10L)), g.constant("twenty", TensorData.scalar(20L)));
        Value t = g.op("Cast", "t", List.of(g.op("Gather", "g2", picked, g.constant("i2", TensorData.scalar(2L)))),
                Map.of("to", (long) DataType.FLOAT.onnxCode()));
        Value y = g.op("Div", "y", g.op("Add", "biased", g.op("Reshape", "reshape", x, shape), bias), t);
        g.rename(y, "y");
        g.addOutput(y);
        OnnxModel model = new OnnxModel(g, 17);
        float[] ramp = new float[24];
        for (int i = 0; i < ramp.length; i++) {
            ramp[i] = 0.25f * i - 3;
        }
        Tensor in = Tensor.ofFloats(new long[] {2, 3, 4}, ramp);
        Map<String, Tensor> before = runUnoptimized(model, in);

        new CleanupPass().apply(model);

        assertThat(g.nodes()).extracting(Node::opType).containsExactly("Reshape", "Add", "Div");
        assertThat(g.nodes().get(0).input(1).constant().toLongs()).containsExactly(2, 12);
        assertThat(g.nodes().get(2).input(1).constant().toFloats()).containsExactly(20f);
        assertThat(runUnoptimized(model, in).get("y").toFloatArray()).containsExactly(before.get("y").toFloatArray());
    }

    /** Nodes ONNX Runtime would reject stay as they are, for the checker to name; folding them must not throw. */
    @Test
    void leavesInvalidNodesUnfolded() {
        Graph g = new Graph("invalid");
        Value v = g.constant("v", TensorData.vector(2, 3));
        Value scalar = g.constant("s", TensorData.scalar(1L));
        List<Value> invalid = List.of(
                g.op("Gather", "axis_out_of_range", List.of(v, scalar), Map.of("axis", 5L)),
                g.op("Gather", "axis_wraps_in_int", List.of(v, scalar), Map.of("axis", (1L << 32))),
                g.op("Concat", "ranks_differ", List.of(v, scalar), Map.of("axis", 0L)),
                g.op("Unsqueeze", "repeated_axis", v, g.constant("twice", TensorData.vector(0, 0))),
                g.op("Squeeze", "not_one", v, g.constant("ax0", TensorData.vector(0))),
                g.op("Reshape", "minus_two", v, g.constant("bad_shape", TensorData.vector(-2, -1))),
                g.op("ConstantOfShape", "negative", g.constant("neg", TensorData.vector(-3))),
                g.op("Expand", "negative_expand", v, g.constant("neg2", TensorData.vector(-1, 2))),
                g.op("Slice", "float_starts", v, g.constant("fs", TensorData.ofFloats(new long[] {1}, 0f)),
                        g.constant("e", TensorData.vector(1))),
                g.op("Where", "float_condition", g.constant("fc", TensorData.scalar(1f)), v, v),
                g.op("Cast", "unknown_type", List.of(v), Map.of("to", 1L << 32 | 7)),
                g.addNode("Add", "omitted", java.util.Arrays.asList(null, v), 1).output(0),
                g.addNode("Shape", "omitted_shape", java.util.Arrays.asList((Value) null), 1).output(0),
                g.op("Sub", "three_inputs", v, v, v));
        Value sum = g.op("Concat", "all", invalid, Map.of("axis", 0L));
        g.addOutput(sum);
        int before = g.nodes().size();

        new CleanupPass().apply(new OnnxModel(g, 17));

        assertThat(g.nodes()).hasSize(before);
    }

    private Map<String, Tensor> runUnoptimized(OnnxModel model, Tensor x) {
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).optimizationLevel(OrtOptLevel.NONE).build()) {
            return runner.run(Map.of("x", x));
        }
    }
}
