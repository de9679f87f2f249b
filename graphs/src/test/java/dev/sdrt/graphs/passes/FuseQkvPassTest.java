package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder;
import dev.sdrt.graphs.analysis.AttentionFinder.Attention;
import dev.sdrt.graphs.analysis.AttentionFinder.Kind;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class FuseQkvPassTest {
    @TempDir
    Path dir;

    /**
     * Fusing turns a self-attention's 3 projections into 1 (2 fewer), a cross-attention's k and v
     * into 1 (1 fewer) and a joint attention's 2 × 3 into 2 (4 fewer).
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "tiny_sd_unet, 6, 6, 0, false",
        "tiny_sdxl_unet, 12, 12, 0, false",
        "tiny_vae_decoder, 1, 0, 0, false",
        "tiny_clip_text, 5, 0, 0, false",
        "tiny_sd3_transformer, 0, 0, 2, false",
        "tiny_sd_unet, 6, 6, 0, true",
        "tiny_sd3_transformer, 0, 0, 2, true",
    })
    void fusesEveryAttentionExactlyAndOnce(String fixture, int self, int cross, int joint, boolean cleanupFirst) {
        OnnxModel model = PassTesting.load(fixture);
        if (cleanupFirst) {
            new CleanupPass().apply(model);
        }
        long projectionsBefore = projections(model.graph());

        PassResult first = new FuseQkvPass().apply(model);

        int attentions = self + cross + joint;
        assertThat(first.matched()).isEqualTo(attentions);
        assertThat(first.notes()).containsExactly(String.format(
                "fused %d of %d attentions (self %d, cross %d, joint %d); 0 already fused", attentions, attentions, self,
                cross, joint));
        assertThat(projections(model.graph())).isEqualTo(projectionsBefore - 2L * self - cross - 4L * joint);
        assertThat(model.graph().opHistogram()).containsEntry("Split", self + cross + 2 * joint);
        for (Attention a : AttentionFinder.find(model.graph())) {
            if (a.kind() == Kind.SELF) {
                assertThat(a.qProjection()).isSameAs(a.kProjection()).isSameAs(a.vProjection());
            } else if (a.kind() == Kind.CROSS) {
                assertThat(a.kProjection()).isSameAs(a.vProjection()).isNotSameAs(a.qProjection());
            }
        }
        Map<String, Tensor> outputs = PassTesting.run(model, fixture, dir);
        assertThat(PassTesting.maxRelDiff(outputs, PassTesting.originalOutputs(fixture))).isLessThanOrEqualTo(PassTesting.EXACT);
        OnnxChecker.check(PassTesting.save(model, dir));

        PassResult second = new FuseQkvPass().apply(model);
        assertThat(second.changes()).isZero();
        assertThat(second.notes().get(0)).endsWith("; " + attentions + " already fused");
        assertThat(model.graph().nodes()).hasSize(first.nodesAfter());
    }

    /**
     * sdrt's own attention (GraphBuilder.attention: reshape to heads, scale folded into q,
     * MatMul-Softmax-MatMul) over projections written as MatMul with a bias on q only, or as 2-D
     * Gemm with transposed weights.
     */
    @ParameterizedTest(name = "gemm={0}")
    @CsvSource({"false", "true"})
    void fusesSdrtStyleProjections(boolean gemm) {
        OnnxModel model = sdrtAttention(gemm);
        Map<String, Tensor> feeds = Map.of("x", randomTensor(gemm ? new long[] {6, 8} : new long[] {1, 6, 8}));
        Map<String, Tensor> before = runOn(model, feeds);

        PassResult result = new FuseQkvPass().apply(model);

        assertThat(result.matched()).isEqualTo(1);
        assertThat(model.graph().opHistogram()).containsEntry(gemm ? "Gemm" : "MatMul", gemm ? 1 : 3)
                .containsEntry("Split", 1);
        Tensor after = runOn(model, feeds).get("y");
        assertThat(Tensors.maxRelDiff(after, before.get("y"))).isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(new FuseQkvPass().apply(model).changes()).isZero();
    }

    private Map<String, Tensor> runOn(OnnxModel model, Map<String, Tensor> feeds) {
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            return runner.run(feeds);
        }
    }

    private static long projections(Graph g) {
        return g.nodes().stream().filter(n -> (n.is("MatMul") || n.is("Gemm")) && n.input(1).isConstant()).count();
    }

    /** x [1,6,8] (or [6,8] for Gemm) → q, k, v → 2 heads of 4 → attention → y [1,6,8]. */
    private static OnnxModel sdrtAttention(boolean gemm) {
        Graph g = new Graph("sdrt_attention");
        Random random = new Random(7);
        Value x = g.addInput("x", DataType.FLOAT, gemm ? Shape.of(6, 8) : Shape.of(1, 6, 8));
        Value q = projection(g, x, "q", gemm, true, random);
        Value k = projection(g, x, "k", gemm, false, random);
        Value v = projection(g, x, "v", gemm, false, random);
        Value heads = g.constant("heads", TensorData.vector(1, -1, 2, 4));
        Value qh = g.op("Transpose", "qt", List.of(g.op("Reshape", "qr", q, heads)), Map.of("perm", new long[] {0, 2, 1, 3}));
        Value kt = g.op("Transpose", "kt", List.of(g.op("Reshape", "kr", k, heads)), Map.of("perm", new long[] {0, 2, 3, 1}));
        Value vh = g.op("Transpose", "vt", List.of(g.op("Reshape", "vr", v, heads)), Map.of("perm", new long[] {0, 2, 1, 3}));
        Value scores = g.op("MatMul", "scores", g.op("Mul", "scale", qh, g.constant("s", TensorData.scalar(0.5f))), kt);
        Value probs = g.op("Softmax", "softmax", List.of(scores), Map.of("axis", -1L));
        Value ctx = g.op("Transpose", "ct", List.of(g.op("MatMul", "context", probs, vh)), Map.of("perm", new long[] {0, 2, 1, 3}));
        Value y = g.op("Reshape", "out", ctx, g.constant("back", TensorData.vector(1, -1, 8)));
        g.rename(y, "y");
        g.addOutput(y);
        return new OnnxModel(g, 17);
    }

    private static Value projection(Graph g, Value x, String name, boolean gemm, boolean bias, Random random) {
        Value w = g.constant("w_" + name, TensorData.ofFloats(new long[] {8, 8}, randomFloats(64, random)));
        Value b = bias ? g.constant("b_" + name, TensorData.ofFloats(new long[] {8}, randomFloats(8, random))) : null;
        if (gemm) {
            Node n = g.addNode("Gemm", name, bias ? List.of(x, w, b) : List.of(x, w), 1).setAttr("transB", 1L);
            return n.output(0);
        }
        Value y = g.op("MatMul", name, x, w);
        return bias ? g.op("Add", name + "_bias", b, y) : y;
    }

    private static float[] randomFloats(int n, Random random) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian() * 0.5f;
        }
        return v;
    }

    private static Tensor randomTensor(long[] shape) {
        return Tensor.ofFloats(shape, randomFloats((int) Tensor.numElements(shape), new Random(11)));
    }
}
