package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Half precision against the float32 original on ONNX Runtime CPU (which computes fp16 ops in
 * float32 between fp16 tensors, so the error measured is that of fp16 weights and activations).
 * Bounds: fp16 ≤ 1e-2 relative on every fixture; bf16 (3 fewer mantissa bits, so about 8× the
 * rounding error) ≤ 5e-2.
 */
class PrecisionPassTest {
    static final double FP16_BOUND = 1e-2;
    static final double BF16_BOUND = 5e-2;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text", "tiny_sd3_transformer"})
    void fp16IsStronglyTypedCloseAndIdempotent(String fixture) {
        OnnxModel model = PassTesting.load(fixture);
        Map<String, DataType> ioTypes = ioTypes(model.graph());

        PassResult first = PrecisionPass.fp16().apply(model);

        Graph g = model.graph();
        assertThat(first.matched()).isPositive();
        assertThat(ioTypes(g)).isEqualTo(ioTypes);
        for (Node n : g.nodes()) {
            if (n.is("Conv") || n.is("MatMul") || n.is("Gemm")) {
                assertThat(floatInputTypes(n)).as(n.name()).containsOnly(DataType.FLOAT16);
            }
            if (n.is("Sin") || n.is("Cos") || n.is("InstanceNormalization") || n.is("LayerNormalization")) {
                assertThat(floatInputTypes(n)).as(n.name()).containsOnly(DataType.FLOAT);
            }
            if (n.is("Cast")) {
                assertThat(n.input(0).type().onnxCode()).as("no-op %s", n.name()).isNotEqualTo(n.attrInt("to", 0));
            }
        }
        Path saved = PassTesting.save(model, dir);
        OnnxChecker.check(saved);
        double error = PassTesting.maxRelDiff(PassTesting.run(model, fixture, dir), PassTesting.originalOutputs(fixture));
        System.out.printf("fp16 %-22s max rel error %.2e (%s)%n", fixture, error, first.notes());
        assertThat(error).isLessThanOrEqualTo(FP16_BOUND);

        PassResult second = PrecisionPass.fp16().apply(model);
        assertThat(second.changes()).isZero();
        assertThat(g.nodes()).hasSize(first.nodesAfter());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_clip_text"})
    void fp16WithHalfInputsAndOutputs(String fixture) {
        OnnxModel model = PassTesting.load(fixture);

        PrecisionPass.fromOptions(DataType.FLOAT16, Map.of("io", "fp16")).apply(model);

        Graph g = model.graph();
        for (Value v : g.inputs()) {
            assertThat(v.type()).as(v.name()).isIn(DataType.FLOAT16, DataType.INT64);
        }
        assertThat(g.outputs()).extracting(Value::type).containsOnly(DataType.FLOAT16);
        OnnxChecker.check(PassTesting.save(model, dir));
        Map<String, Tensor> outputs = PassTesting.run(model, fixture, dir);
        assertThat(outputs.values()).extracting(Tensor::dtype).containsOnly(DType.FLOAT16);
        double error = PassTesting.maxRelDiff(outputs, PassTesting.originalOutputs(fixture));
        System.out.printf("fp16 io=fp16 %-15s max rel error %.2e%n", fixture, error);
        assertThat(error).isLessThanOrEqualTo(FP16_BOUND);
        assertThat(PrecisionPass.fromOptions(DataType.FLOAT16, Map.of("io", "fp16")).apply(model).changes()).isZero();
    }

    /**
     * bf16 after cleanup. ONNX Runtime CPU has almost no bf16 kernels, so the test graph computes
     * each bf16 op in float32 between bf16 tensors; Conv has no bf16 before opset 22 and stays float32.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text", "tiny_sd3_transformer"})
    void bf16IsCloseWithinItsLooserBound(String fixture) {
        OnnxModel model = PassTesting.load(fixture);
        new CleanupPass().apply(model);

        PassResult result = PrecisionPass.bf16().apply(model);

        OnnxChecker.check(PassTesting.save(model, dir));
        assertThat(model.graph().nodes().stream().filter(n -> n.is("MatMul")).flatMap(n -> floatInputTypes(n).stream()))
                .containsOnly(DataType.BFLOAT16);
        if (model.graph().opHistogram().containsKey("Conv")) {
            assertThat(result.notes()).anyMatch(note -> note.startsWith("kept float32, ONNX opset 17 has no bf16 for: {Conv="));
        }
        assertThat(PrecisionPass.bf16().apply(model).changes()).isZero();
        PassTesting.computeInFloat(model, DataType.BFLOAT16);
        double error = PassTesting.maxRelDiff(PassTesting.run(model, fixture, dir), PassTesting.originalOutputs(fixture));
        System.out.printf("bf16 %-22s max rel error %.2e%n", fixture, error);
        assertThat(error).isLessThanOrEqualTo(BF16_BOUND);
    }

    /**
     * Ops whose output type is an attribute follow their readers: Cast(to=float), ConstantOfShape
     * and RandomNormalLike(dtype=float) feed fp16 arithmetic and become fp16. A weight beyond the
     * fp16 range is clamped to 65504; an infinite mask value stays infinite.
     */
    @Test
    void typeAttributesFollowTheirReadersAndWeightsAreClamped() {
        OnnxModel model = typeSources(true);
        Graph g = model.graph();

        PrecisionPass.fp16().apply(model);

        Map<String, Node> byName = nodesByName(g);
        assertThat(byName.get("count").attrInt("to", 0)).isEqualTo(DataType.FLOAT16.onnxCode());
        assertThat(byName.get("ones").attrTensor("value").type()).isEqualTo(DataType.FLOAT16);
        assertThat(byName.get("noise").attrInt("dtype", 0)).isEqualTo(DataType.FLOAT16.onnxCode());
        assertThat(g.value("w").constant().type()).isEqualTo(DataType.FLOAT16);
        assertThat(g.value("w").constant().toFloats()).containsExactly(65504f, -65504f, 1f, 1f);
        assertThat(g.value("mask").constant().toFloats()).containsExactly(0f, 0f, 0f, Float.NEGATIVE_INFINITY);
        assertThat(g.outputs().get(0).name()).isEqualTo("z");
        assertThat(g.outputs().get(0).type()).isEqualTo(DataType.FLOAT);
        OnnxChecker.check(PassTesting.save(model, dir));
    }

    /** The same graph without RandomNormalLike (ONNX Runtime CPU has no fp16 kernel for it) runs and computes exactly. */
    @Test
    void typeSourceGraphRuns() {
        OnnxModel model = typeSources(false);
        PrecisionPass.fp16().apply(model);
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            Tensor in = Tensor.ofFloats(new long[] {2, 4}, new float[] {1, 0, 2, 0, 0, 0, 0, 0});
            assertThat(runner.run(Map.of("x", in)).get("z").toFloatArray()).containsExactly(
                    250.25f, 0.25f, 0.75f, Float.NEGATIVE_INFINITY, 0.25f, 0.25f, 0.25f, Float.NEGATIVE_INFINITY);
        }
    }

    /** z = (Min(x · w, 1000) + mask + ConstantOfShape(1) [+ 0 · RandomNormalLike(x)]) / float(shape(x)[1]). */
    private static OnnxModel typeSources(boolean noise) {
        Graph g = new Graph("sources");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 4));
        Value w = g.constant("w", TensorData.ofFloats(new long[] {4}, 1e6f, -1e6f, 1f, 1f));
        Value mask = g.constant("mask", TensorData.ofFloats(new long[] {4}, 0f, 0f, 0f, Float.NEGATIVE_INFINITY));
        Value z = g.op("Min", "min", g.op("Mul", "scale", x, w), g.constant("ceiling", TensorData.scalar(1000f)));
        z = g.op("Add", "masked", z, mask);
        Value ones = g.op("ConstantOfShape", "ones", List.of(g.op("Shape", "shape", x)),
                Map.of("value", TensorData.ofFloats(new long[] {1}, 1f)));
        z = g.op("Add", "plus_ones", z, ones);
        if (noise) {
            Value random = g.op("RandomNormalLike", "noise", List.of(x), Map.of("dtype", (long) DataType.FLOAT.onnxCode()));
            z = g.op("Add", "plus_noise", z, g.op("Mul", "no_noise", random, g.constant("zero", TensorData.scalar(0f))));
        }
        Value columns = g.op("Gather", "columns", g.op("Shape", "shape_again", x), g.constant("one", TensorData.scalar(1L)));
        z = g.op("Div", "per_column", z, g.op("Cast", "count", List.of(columns), Map.of("to", (long) DataType.FLOAT.onnxCode())));
        g.rename(z, "z");
        g.addOutput(z);
        return new OnnxModel(g, 17);
    }

    /**
     * A normalization written out in elementwise ops (as channels-last writes its group norm) over
     * activations near 2000: the variance (about 1e6) is beyond half precision. Its Add ε, Sqrt and
     * Div stay float32 with the kept ReduceMean and Pow, so the output stays that of float32; in half
     * the variance would become infinite and every output 0.
     */
    @Test
    void normalizationStatisticsStayFloat32() {
        Graph g = new Graph("norm");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(1, 16, 2));
        Value mean = g.op("ReduceMean", "mean", List.of(x), Map.of("axes", new long[] {1}, "keepdims", 1L));
        Value centered = g.op("Sub", "center", x, mean);
        Value squared = g.op("Pow", "square", centered, g.constant("two", TensorData.scalar(2f)));
        Value variance = g.op("ReduceMean", "variance", List.of(squared), Map.of("axes", new long[] {1}, "keepdims", 1L));
        Value std = g.op("Sqrt", "std", g.op("Add", "eps", variance, g.constant("epsilon", TensorData.scalar(1e-5f))));
        Value y = g.op("Mul", "gamma", g.op("Div", "normalize", centered, std), g.constant("g", TensorData.ofFloats(new long[] {2}, 1f, 1f)));
        g.rename(y, "y");
        g.addOutput(y);
        OnnxModel model = new OnnxModel(g, 17);
        float[] values = new float[32];
        for (int i = 0; i < values.length; i++) {
            values[i] = (i % 2 == 0 ? 1 : -1) * (2000f + 40 * i);
        }
        Tensor input = Tensor.ofFloats(new long[] {1, 16, 2}, values);
        float[] expected;
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            expected = runner.run(Map.of("x", input)).get("y").toFloatArray();
        }

        PassResult result = PrecisionPass.fp16().apply(model);

        assertThat(result.notes()).anyMatch(n -> n.contains("normalization statistics: 3 nodes"));
        Map<String, Node> byName = nodesByName(g);
        for (String kept : List.of("eps", "std", "normalize")) {
            assertThat(byName.get(kept).output(0).type()).as(kept).isEqualTo(DataType.FLOAT);
        }
        assertThat(byName.get("gamma").output(0).type()).isEqualTo(DataType.FLOAT16);
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            float[] half = runner.run(Map.of("x", input)).get("y").toFloatArray();
            for (int i = 0; i < half.length; i++) {
                assertThat(half[i]).as("output %d", i).isCloseTo(expected[i], within(2e-2f));
            }
        }
        assertThat(PrecisionPass.fp16().apply(model).changes()).as("idempotent").isZero();
    }

    @Test
    void optionsAreChecked() {
        assertThat(PrecisionPass.fromOptions(DataType.FLOAT16, Map.of()).keep()).isEqualTo(PrecisionPass.DEFAULT_KEEP);
        assertThat(PrecisionPass.fromOptions(DataType.FLOAT16, Map.of("keep", "")).keep()).isEmpty();
        assertThat(PrecisionPass.fromOptions(DataType.BFLOAT16, Map.of("keep", "Softmax|LayerNormalization", "io", "bf16"))
                .keep()).containsExactlyInAnyOrder("Softmax", "LayerNormalization");
        assertThatThrownBy(() -> PrecisionPass.fromOptions(DataType.FLOAT16, Map.of("io", "bf16")))
                .hasMessage("option io of pass fp16 must be fp32 or fp16, got 'bf16'");
        assertThatThrownBy(() -> PrecisionPass.fromOptions(DataType.FLOAT16, Map.of("keep", "Layer Norm")))
                .hasMessageContaining("'Layer Norm' is not an op type");
    }

    private static Map<String, DataType> ioTypes(Graph g) {
        Map<String, DataType> types = new java.util.TreeMap<>();
        g.inputs().forEach(v -> types.put(v.name(), v.type()));
        g.outputs().forEach(v -> types.put(v.name(), v.type()));
        return types;
    }

    private static Set<DataType> floatInputTypes(Node n) {
        return n.inputs().stream().filter(v -> v != null && v.type() != null && v.type().isFloatingPoint())
                .map(Value::type).collect(java.util.stream.Collectors.toSet());
    }

    private static Map<String, Node> nodesByName(Graph g) {
        Map<String, Node> byName = new java.util.HashMap<>();
        g.nodes().forEach(n -> byName.put(n.name(), n));
        return byName;
    }
}
