package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * channels-last is exact (only data movement) on every fixture, with graph inputs and outputs
 * kept (io=nchw) or made NHWC (io=nhwc), leaves no Transpose pair that undoes itself, and is
 * idempotent. Transpose counts before and after are printed.
 */
class ChannelsLastPassTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text", "tiny_sd3_transformer"})
    void exactIdempotentAndWithoutInversePairs(String fixture) {
        OnnxModel model = PassTesting.load(fixture);
        int before = ChannelsLastPass.transposeCount(model.graph());
        List<String> io = ioSignature(model.graph());

        PassResult first = new ChannelsLastPass().apply(model);

        Graph g = model.graph();
        int after = ChannelsLastPass.transposeCount(g);
        System.out.printf("channels-last %-22s Transposes %d → %d, %s%n", fixture, before, after, first.notes());
        assertThat(ioSignature(g)).isEqualTo(io);
        assertNoInversePairs(g);
        if (fixture.contains("unet") || fixture.contains("vae")) {
            assertThat(first.matched()).isPositive();
            // every GroupNorm of a 4-D tensor computes in NHWC; the VAE's attention normalizes [N, C, HW]
            assertThat(g.opHistogram().getOrDefault("InstanceNormalization", 0)).isEqualTo(fixture.contains("vae") ? 1 : 0);
        }
        OnnxChecker.check(PassTesting.save(model, dir));
        double error = PassTesting.maxRelDiff(PassTesting.run(model, fixture, dir), PassTesting.originalOutputs(fixture));
        System.out.printf("channels-last %-22s max rel error %.2e%n", fixture, error);
        assertThat(error).isLessThanOrEqualTo(PassTesting.EXACT);

        PassResult second = new ChannelsLastPass().apply(model);
        assertThat(second.changes()).as("second run: %s", second.notes()).isZero();
        assertThat(g.nodes()).hasSize(first.nodesAfter());
    }

    /** io=nhwc: 4-D inputs and outputs are NHWC; fed transposed inputs, the graph computes the transposed outputs. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_sd3_transformer"})
    void nhwcInputsAndOutputs(String fixture) {
        OnnxModel model = PassTesting.load(fixture);
        Map<String, long[]> nchwShapes = new LinkedHashMap<>();
        for (Value v : model.graph().inputs()) {
            nchwShapes.put(v.name(), v.shape().toArray());
        }
        int before = ChannelsLastPass.transposeCount(model.graph());

        PassResult first = ChannelsLastPass.fromOptions(Map.of("io", "nhwc")).apply(model);

        Graph g = model.graph();
        System.out.printf("channels-last io=nhwc %-14s Transposes %d → %d%n", fixture, before, ChannelsLastPass.transposeCount(g));
        for (Value v : g.inputs()) {
            long[] nchw = nchwShapes.get(v.name());
            if (nchw.length == 4) {
                assertThat(v.shape().toArray()).as(v.name()).containsExactly(nchw[0], nchw[2], nchw[3], nchw[1]);
            } else {
                assertThat(v.shape().toArray()).as(v.name()).containsExactly(nchw);
            }
        }
        assertNoInversePairs(g);
        OnnxChecker.check(PassTesting.save(model, dir));

        FixtureCase c = FixtureCase.named(fixture);
        Map<String, Tensor> feeds = new LinkedHashMap<>();
        c.inputs().forEach((name, t) -> feeds.put(name, t.rank() == 4 ? toNhwc(t) : t));
        Map<String, Tensor> outputs;
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            outputs = runner.run(feeds);
        }
        double worst = 0;
        for (var e : PassTesting.originalOutputs(fixture).entrySet()) {
            Tensor expected = e.getValue();
            Tensor actual = outputs.get(e.getKey());
            if (expected.rank() == 4) {
                assertThat(actual.shape()).containsExactly(expected.dim(0), expected.dim(2), expected.dim(3), expected.dim(1));
                actual = toNchw(actual);
            }
            worst = Math.max(worst, Tensors.maxRelDiff(actual, expected));
        }
        System.out.printf("channels-last io=nhwc %-14s max rel error %.2e%n", fixture, worst);
        assertThat(worst).isLessThanOrEqualTo(PassTesting.EXACT);

        PassResult second = ChannelsLastPass.fromOptions(Map.of("io", "nhwc")).apply(model);
        assertThat(second.changes()).as("second run: %s", second.notes()).isZero();
        assertThat(g.nodes()).hasSize(first.nodesAfter());
    }

    /**
     * SDXL's Transformer2D uses linear projections: GroupNorm → permute(0,2,3,1) → reshape → Linear
     * and back → reshape → permute(0,3,1,2) → residual Add. With the chain in NHWC both permutes go.
     */
    @Test
    void linearProjectionPermutesDisappear() {
        OnnxModel model = PassTesting.load("tiny_sdxl_unet");
        OnnxChecker.inferShapes(model);
        List<String> before = transformerPermutes(model.graph());

        new ChannelsLastPass().apply(model);

        assertThat(before).hasSize(2 * 6);
        assertThat(transformerPermutes(model.graph())).isEmpty();
    }

    /**
     * A small graph with every rewrite: a [C,1,1] constant, a [N,C,1,1] computed operand (changes
     * layout by Reshape), a computed [C,1,1] (sdrt's exporter before cleanup), GroupNorm with scale
     * and bias, Resize by scales, Concat on channels, a Shape reader, a Transpose reader, a graph
     * output read mid-chain, and a 3-D permute.
     */
    @Test
    void everyRewriteOnASmallGraph() {
        OnnxModel model = smallGraph();
        Map<String, Tensor> feeds = Map.of("x", random(new long[] {2, 3, 4, 4}, 1), "t", random(new long[] {2, 8}, 2));
        Map<String, Tensor> expected = run(model, feeds);

        PassResult result = new ChannelsLastPass().apply(model);

        Graph g = model.graph();
        assertThat(result.matched()).isGreaterThanOrEqualTo(6);
        Node concat = named(g, "cat");
        assertThat(concat.attrInt("axis", -1)).isEqualTo(3);
        Node resize = named(g, "upsample");
        assertThat(Constants.data(resize.input(2)).toFloats()).containsExactly(1f, 2f, 2f, 1f);
        assertThat(g.opHistogram()).doesNotContainKey("InstanceNormalization").containsKey("ReduceMean");
        assertThat(result.notes().get(1)).contains("2 Reshape layout adapters", "1 Shape→Gather", "1 perms folded");
        assertThat(named(g, "swap_hw").attrInts("perm")).containsExactly(0, 3, 2, 1);
        assertNoInversePairs(g);
        OnnxChecker.check(PassTesting.save(model, dir));
        Map<String, Tensor> actual = run(model, feeds);
        for (String name : expected.keySet()) {
            assertThat(Tensors.maxRelDiff(actual.get(name), expected.get(name))).as(name).isLessThanOrEqualTo(PassTesting.EXACT);
        }
        assertThat(new ChannelsLastPass().apply(model).changes()).isZero();
    }

    /** The GPU target spec without tome: fuse-qkv, channels-last, then fp16, within fp16's bound. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_vae_decoder"})
    void composesWithFuseQkvAndFp16(String fixture) {
        OnnxModel model = PassTesting.load(fixture);

        List<PassResult> results = PassPipeline.parse("cleanup,fuse-qkv,channels-last,fp16").run(model);

        System.out.print(PassPipeline.summary(results));
        OnnxChecker.check(PassTesting.save(model, dir));
        double error = PassTesting.maxRelDiff(PassTesting.run(model, fixture, dir), PassTesting.originalOutputs(fixture));
        System.out.printf("cleanup,fuse-qkv,channels-last,fp16 %-16s max rel error %.2e%n", fixture, error);
        assertThat(error).isLessThanOrEqualTo(PrecisionPassTest.FP16_BOUND);
        assertThat(model.graph().nodes().stream().filter(n -> n.is("Pow") || n.is("ReduceMean"))
                .flatMap(n -> n.inputs().stream().limit(1)).map(Value::type)).containsOnly(DataType.FLOAT);
    }

    @Test
    void optionsAreChecked() {
        assertThat(ChannelsLastPass.fromOptions(Map.of()).ioNhwc()).isFalse();
        assertThat(ChannelsLastPass.fromOptions(Map.of("io", "nhwc")).ioNhwc()).isTrue();
        assertThatThrownBy(() -> ChannelsLastPass.fromOptions(Map.of("io", "NHWC")))
                .hasMessage("option io of pass channels-last must be nchw or nhwc, got 'NHWC'");
        assertThat(PassPipeline.parse("channels-last:io=nhwc").passes().get(0)).isInstanceOf(ChannelsLastPass.class);
    }

    // ---- helpers ----

    /** x [2,3,4,4], t [2,8] → y (NCHW), plus the mid-chain value as a second output. */
    private static OnnxModel smallGraph() {
        Graph g = new Graph("small");
        Random random = new Random(7);
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 3, 4, 4));
        Value t = g.addInput("t", DataType.FLOAT, Shape.of(2, 8));
        Value h = g.op("Conv", "conv1", List.of(x, weight(g, "w1", random, 8, 3, 3, 3), weight(g, "b1", random, 8)),
                Map.of("pads", new long[] {1, 1, 1, 1}, "kernel_shape", new long[] {3, 3}));
        // temb: Gemm [2,8] → Unsqueeze → [2,8,1,1] added to the conv output
        Value temb = g.op("Gemm", "temb", List.of(t, weight(g, "wt", random, 8, 8)), Map.of("transB", 1L));
        temb = g.op("Unsqueeze", "temb_4d", temb, g.constant("axes", TensorData.vector(2, 3)));
        h = g.op("Add", "add_temb", h, temb);
        // GroupNorm(4 groups of 2 channels) as exporters write it, with scale and bias
        Value grouped = g.op("Reshape", "gn_reshape", h, g.constant("gn_shape", TensorData.vector(0, 4, -1)));
        Value normed = g.op("InstanceNormalization", "gn_norm", List.of(grouped, weight(g, "gn_s", random, 4),
                weight(g, "gn_b", random, 4)), Map.of("epsilon", 1e-5f));
        Value back = g.op("Reshape", "gn_back", normed, g.op("Shape", "gn_shape_of", h));
        Value gamma = g.constant("gamma", TensorData.ofFloats(new long[] {8, 1, 1}, floats(random, 8)));
        Value act = g.op("Mul", "gamma_mul", back, gamma);
        // β as sdrt's exporter writes it before cleanup: a Reshape of the [C] parameter to [C,1,1] at run time
        act = g.op("Add", "beta_add", act, g.op("Reshape", "beta_shape", weight(g, "beta", random, 8),
                g.constant("beta_dims", TensorData.vector(8, 1, 1))));
        Value silu = g.op("Mul", "silu", act, g.op("Sigmoid", "sigmoid", act));
        Value up = g.op("Resize", "upsample", Arrays.asList(silu, null, g.constant("scales",
                TensorData.ofFloats(new long[] {4}, 1f, 1f, 2f, 2f))), Map.of("mode", "nearest"));
        Value skip = g.op("Resize", "skip_up", Arrays.asList(h, null, g.constant("scales2",
                TensorData.ofFloats(new long[] {4}, 1f, 1f, 2f, 2f))), Map.of("mode", "nearest"));
        Value cat = g.op("Concat", "cat", List.of(up, skip), Map.of("axis", 1L));
        // [N, C of act, -1] from act's shape: act is needed in NHWC only, so its Shape becomes Shape → Gather
        Value shape = g.op("Shape", "act_shape", act);
        Value flat = g.op("Reshape", "flatten", cat, g.op("Concat", "flat_shape", List.of(
                g.op("Slice", "nc", shape, g.constant("s0", TensorData.vector(0)), g.constant("s2", TensorData.vector(2))),
                g.constant("minus1", TensorData.vector(-1))), Map.of("axis", 0L)));
        Value tokens = g.op("Transpose", "to_tokens", List.of(flat), Map.of("perm", new long[] {0, 2, 1}));
        Value y = g.op("Conv", "conv2", List.of(cat, weight(g, "w2", random, 4, 16, 1, 1)), Map.of("kernel_shape", new long[] {1, 1}));
        // a Transpose of act with another perm: it folds the layout change into its perm
        Value swapped = g.op("Transpose", "swap_hw", List.of(act), Map.of("perm", new long[] {0, 1, 3, 2}));
        g.rename(y, "y");
        g.rename(silu, "mid");
        g.rename(tokens, "tokens");
        g.rename(swapped, "swapped");
        g.addOutput(y);
        g.addOutput(silu);
        g.addOutput(tokens);
        g.addOutput(swapped);
        return new OnnxModel(g, 17);
    }

    private static Value weight(Graph g, String name, Random random, long... dims) {
        int n = (int) Arrays.stream(dims).reduce(1, (a, b) -> a * b);
        return g.constant(name, TensorData.ofFloats(dims, floats(random, n)));
    }

    private static float[] floats(Random random, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) random.nextGaussian() * 0.5f + (i % 3 == 0 ? 1f : 0f);
        }
        return f;
    }

    private Map<String, Tensor> run(OnnxModel model, Map<String, Tensor> feeds) {
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            return runner.run(feeds);
        }
    }

    private static Tensor random(long[] shape, long seed) {
        Random r = new Random(seed);
        float[] f = new float[(int) Tensor.numElements(shape)];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) r.nextGaussian();
        }
        return Tensor.ofFloats(shape, f);
    }

    private static Node named(Graph g, String name) {
        return g.nodes().stream().filter(n -> n.name().equals(name)).findFirst().orElseThrow();
    }

    /** Names, types and shapes of the graph inputs and outputs. */
    private static List<String> ioSignature(Graph g) {
        List<String> io = new ArrayList<>();
        g.inputs().forEach(v -> io.add("in " + v));
        g.outputs().forEach(v -> io.add("out " + v.name() + ":" + v.type()));
        return io;
    }

    /** No Transpose reads a Transpose whose perm it undoes. */
    static void assertNoInversePairs(Graph g) {
        for (Node t2 : g.nodes()) {
            Node t1 = t2.input(0) == null ? null : t2.input(0).producer();
            if (t2.is("Transpose") && t1 != null && t1.is("Transpose")) {
                int rank = t2.input(0).shape().rank();
                long[] p1 = Layouts.perm(t1, rank);
                long[] p2 = Layouts.perm(t2, rank);
                boolean identity = true;
                for (int i = 0; i < rank; i++) {
                    identity &= p1[(int) p2[i]] == i;
                }
                assertThat(identity).as("%s after %s", t2.name(), t1.name()).isFalse();
            }
        }
    }

    /** Layout Transposes (0,2,3,1)/(0,3,1,2) that enter or leave a Transformer2D's token layout: next to a [N,HW,C] Reshape. */
    private static List<String> transformerPermutes(Graph g) {
        List<String> found = new ArrayList<>();
        for (Node n : g.nodes()) {
            long[] p = n.is("Transpose") ? n.attrInts("perm") : null;
            if (p == null || !Arrays.equals(p, Layouts.TO_NHWC) && !Arrays.equals(p, Layouts.TO_NCHW)) {
                continue;
            }
            Node before = n.input(0).producer();
            boolean fromTokens = Arrays.equals(p, Layouts.TO_NCHW) && before != null && before.is("Reshape")
                    && before.input(0).shape() != null && before.input(0).shape().rank() == 3;
            boolean toTokens = Arrays.equals(p, Layouts.TO_NHWC) && n.output(0).consumerNodes().stream()
                    .anyMatch(c -> c.is("Reshape") && c.output(0).shape() != null && c.output(0).shape().rank() == 3);
            if (fromTokens || toTokens) {
                found.add(n.name());
            }
        }
        return found;
    }

    static Tensor toNhwc(Tensor t) {
        return transpose(t, Layouts.TO_NHWC);
    }

    static Tensor toNchw(Tensor t) {
        return transpose(t, Layouts.TO_NCHW);
    }

    private static Tensor transpose(Tensor t, long[] perm) {
        long[] in = t.shape();
        long[] out = new long[4];
        for (int i = 0; i < 4; i++) {
            out[i] = in[(int) perm[i]];
        }
        float[] src = t.toFloatArray();
        float[] dst = new float[src.length];
        long[] stride = {in[1] * in[2] * in[3], in[2] * in[3], in[3], 1};
        int k = 0;
        for (long a = 0; a < out[0]; a++) {
            for (long b = 0; b < out[1]; b++) {
                for (long c = 0; c < out[2]; c++) {
                    for (long d = 0; d < out[3]; d++) {
                        long[] idx = {a, b, c, d};
                        long s = 0;
                        for (int i = 0; i < 4; i++) {
                            s += idx[i] * stride[(int) perm[i]];
                        }
                        dst[k++] = src[(int) s];
                    }
                }
            }
        }
        return Tensor.ofFloats(out, dst);
    }
}
