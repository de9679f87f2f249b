package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder.Attention;
import dev.sdrt.graphs.analysis.AttentionFinder.Kind;
import dev.sdrt.graphs.analysis.AttentionFinder;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class TokenMergingPassTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet"})
    void ratioZeroIsTheIdentity(String fixture) {
        OnnxModel model = PassTesting.load(fixture);
        int nodes = model.graph().nodes().size();

        PassResult result = new TokenMergingPass(0, 4, 2, false).apply(model);

        assertThat(result.changes()).isZero();
        assertThat(result.matched()).isZero();
        assertThat(result.notes()).containsExactly("ratio 0: identity");
        assertThat(model.graph().nodes()).hasSize(nodes);
        Map<String, Tensor> outputs = PassTesting.run(model, fixture, dir);
        assertThat(PassTesting.maxRelDiff(outputs, PassTesting.originalOutputs(fixture))).isLessThanOrEqualTo(1e-6);
    }

    /**
     * tiny SD: 5 self-attentions at 16×16 (down block 0: 2, up block 1: 3) and 1 at 8×8 (mid).
     * tiny SDXL: none at 16×16 (its first down block has no attention), 12 at 8×8 (down 2×2, mid
     * 2, up 3×2).
     */
    @ParameterizedTest(name = "{0} max_downsample={1}")
    @CsvSource({
        "tiny_sd_unet, 1, 5, 6",
        "tiny_sd_unet, 2, 6, 6",
        "tiny_sd_unet, 4, 6, 6",
        "tiny_sdxl_unet, 1, 0, 12",
        "tiny_sdxl_unet, 2, 12, 12",
    })
    void mergesTheSelfAttentionsUpToMaxDownsample(String fixture, int maxDownsample, int merged, int selfAttentions) {
        OnnxModel model = PassTesting.load(fixture);
        int topLevel = topLevelSelfAttentions(model);

        PassResult result = new TokenMergingPass(0.5, maxDownsample, 2, false).apply(model);

        assertThat(result.matched()).isEqualTo(merged);
        if (maxDownsample == 1) {
            assertThat(result.matched()).isEqualTo(topLevel);
        }
        assertThat(result.notes().get(0)).startsWith("merged " + merged + " of " + selfAttentions + " self-attentions");
        if (merged < selfAttentions) {
            assertThat(result.notes()).contains((selfAttentions - merged) + " self-attention"
                    + (selfAttentions - merged == 1 ? " left as it is" : "s left as they are")
                    + ": coarser than max_downsample=" + maxDownsample);
        }
        if (merged == 0) {
            assertThat(result.changes()).isZero();
            assertThat(model.metadata()).doesNotContainKey(TokenMergingPass.METADATA_KEY);
            return;
        }
        // the attention itself now runs on N − r tokens: scores [B, heads, N − r, N − r]
        OnnxChecker.inferShapes(model);
        int shortened = 0;
        for (Attention a : AttentionFinder.find(model.graph())) {
            Shape scores = a.scores().output(0).shape();
            long n = scores.dim(2).value();
            if (a.kind() == Kind.SELF && (n == 128 || n == 32)) {
                assertThat(scores.dim(3).value()).isEqualTo(n);
                // the projections read the merged tokens [B, N − r, C]
                assertThat(a.querySource().shape().dim(1).value()).isEqualTo(n);
                assertThat(a.querySource().producer().opType()).isEqualTo("Concat");
                shortened++;
            } else if (a.kind() == Kind.SELF) {
                assertThat(n).as("unmerged self-attention keeps 256 or 64 tokens").isIn(256L, 64L);
            }
        }
        assertThat(shortened).isEqualTo(merged);
        assertThat(model.metadata().get(TokenMergingPass.METADATA_KEY))
                .isEqualTo("ratio=0.5;max_downsample=" + maxDownsample + ";stride=2;random=false;blocks=" + merged);
    }

    /**
     * The issue asks to report the error: printed here. Measured on ONNX Runtime CPU (max relative
     * error over the output, cosine of the flattened outputs; the fixtures' random weights make
     * tokens less alike than a trained UNet's, so this is a pessimistic picture):
     *
     * <pre>
     *   fixture          max_downsample  blocks  ratio 0.3          ratio 0.5
     *   tiny_sd_unet     1               5       0.148 / 0.98953    0.187 / 0.98080
     *   tiny_sd_unet     2               6       0.154 / 0.98912    0.186 / 0.98010
     *   tiny_sdxl_unet   2               12      0.167 / 0.98859    0.235 / 0.97487
     * </pre>
     *
     * (tiny SDXL has no self-attention at the top level, so max_downsample=1 leaves it as it is.)
     * The bounds leave a margin over those numbers.
     */
    @ParameterizedTest(name = "{0} ratio={1} max_downsample={2}")
    @CsvSource({
        "tiny_sd_unet, 0.3, 1, 0.22, 0.975",
        "tiny_sd_unet, 0.5, 1, 0.26, 0.97",
        "tiny_sd_unet, 0.3, 2, 0.22, 0.975",
        "tiny_sd_unet, 0.5, 2, 0.26, 0.97",
        "tiny_sdxl_unet, 0.3, 2, 0.24, 0.975",
        "tiny_sdxl_unet, 0.5, 2, 0.32, 0.96",
    })
    void reportsTheErrorAndStaysClose(String fixture, double ratio, int maxDownsample, double maxRel, double minCosine) {
        OnnxModel model = PassTesting.load(fixture);
        PassResult result = new TokenMergingPass(ratio, maxDownsample, 2, false).apply(model);
        assertThat(result.matched()).isPositive();

        Path file = PassTesting.save(model, dir);
        OnnxChecker.check(file);
        Map<String, Tensor> outputs = PassTesting.run(model, fixture, dir);
        Map<String, Tensor> reference = PassTesting.originalOutputs(fixture);
        double rel = PassTesting.maxRelDiff(outputs, reference);
        double cosine = cosine(outputs.get("out_sample"), reference.get("out_sample"));
        System.out.printf("tome %s ratio=%.1f max_downsample=%d: %d blocks merged, max rel error %.4f, cosine %.5f%n",
                fixture, ratio, maxDownsample, result.matched(), rel, cosine);
        assertThat(rel).isGreaterThan(0).isLessThanOrEqualTo(maxRel);
        assertThat(cosine).isGreaterThanOrEqualTo(minCosine);

        PassResult second = new TokenMergingPass(ratio, maxDownsample, 2, false).apply(model);
        assertThat(second.changes()).isZero();
        assertThat(second.notes()).anyMatch(n -> n.startsWith("already merged"));
    }

    @Test
    void randomDestinationsBecomeAGraphInputTheHostFills() {
        String fixture = "tiny_sd_unet";
        OnnxModel model = PassTesting.load(fixture);
        PassResult result = new TokenMergingPass(0.5, 2, 2, true).apply(model);

        assertThat(result.matched()).isEqualTo(6);
        Map<String, Value> inputs = model.graph().inputs().stream().collect(Collectors.toMap(Value::name, v -> v));
        assertThat(inputs.get(TokenMergingPass.DST_INDEX_INPUT).type()).isEqualTo(DataType.INT64);
        assertThat(inputs.get(TokenMergingPass.DST_INDEX_INPUT).shape()).isEqualTo(Shape.of(8, 8));
        assertThat(inputs.get("tome_dst_index_d2").shape()).isEqualTo(Shape.of(4, 4));
        assertThat(result.notes()).contains("destination choice input tome_dst_index: int64[8, 8], values in [0, 4)");
        Path file = PassTesting.save(model, dir);
        OnnxChecker.check(file);

        Map<String, Tensor> topLeft = run(file, fixture, new long[64], new long[16]);
        Map<String, Tensor> drawn = run(file, fixture, draw(64, 7), draw(16, 8));
        Map<String, Tensor> drawnAgain = run(file, fixture, draw(64, 7), draw(16, 8));
        Map<String, Tensor> other = run(file, fixture, draw(64, 9), draw(16, 10));

        // all-zero choices are the constant top-left layout
        OnnxModel constant = PassTesting.load(fixture);
        new TokenMergingPass(0.5, 2, 2, false).apply(constant);
        assertThat(PassTesting.maxRelDiff(topLeft, PassTesting.run(constant, fixture, dir))).isLessThanOrEqualTo(1e-6);
        // the same draw gives the same image; another draw changes it a little
        assertThat(PassTesting.maxRelDiff(drawn, drawnAgain)).isZero();
        Map<String, Tensor> reference = PassTesting.originalOutputs(fixture);
        double changed = PassTesting.maxRelDiff(drawn, other);
        System.out.printf("tome tiny_sd_unet random: draw vs draw max rel %.4f; vs reference: top-left cosine %.5f, draw"
                + " cosine %.5f%n", changed, cosine(topLeft.get("out_sample"), reference.get("out_sample")),
                cosine(drawn.get("out_sample"), reference.get("out_sample")));
        assertThat(changed).isGreaterThan(1e-4).isLessThan(0.5);
        assertThat(cosine(drawn.get("out_sample"), reference.get("out_sample"))).isGreaterThan(0.98);

        PassResult second = new TokenMergingPass(0.5, 2, 2, true).apply(model);
        assertThat(second.changes()).isZero();
    }

    /**
     * In the pipeline: after cleanup and fuse-qkv (the fused projection reads the merged
     * tokens once) or before fuse-qkv, and before fp16 (the graph stays convertible; on ONNX Runtime CPU the half
     * ops run in float between casts).
     */
    @Test
    void composesWithTheOtherPasses() {
        String fixture = "tiny_sd_unet";
        OnnxModel alone = PassTesting.load(fixture);
        new TokenMergingPass(0.5, 1, 2, false).apply(alone);
        Map<String, Tensor> tomeOnly = PassTesting.run(alone, fixture, dir);

        OnnxModel fused = PassTesting.load(fixture);
        List<PassResult> results = PassPipeline.parse("cleanup,fuse-qkv,tome:ratio=0.5").run(fused);
        assertThat(results.get(2).matched()).isEqualTo(5);
        double fusedDiff = PassTesting.maxRelDiff(PassTesting.run(fused, fixture, dir), tomeOnly);
        // fusing afterwards works too: the three projections read the merged tokens
        OnnxModel fusedAfter = PassTesting.load(fixture);
        List<PassResult> after = PassPipeline.parse("tome:ratio=0.5,fuse-qkv").run(fusedAfter);
        assertThat(after.get(1).matched()).isEqualTo(12);
        double fusedAfterDiff = PassTesting.maxRelDiff(PassTesting.run(fusedAfter, fixture, dir), tomeOnly);

        OnnxModel half = PassTesting.load(fixture);
        PassPipeline.parse("cleanup,fuse-qkv,tome:ratio=0.5,fp16").run(half);
        OnnxChecker.check(PassTesting.save(half, dir));
        PassTesting.computeInFloat(half, DataType.FLOAT16);
        Map<String, Tensor> halfOut = PassTesting.run(half, fixture, dir);
        Map<String, Tensor> reference = PassTesting.originalOutputs(fixture);
        System.out.printf("tome tiny_sd_unet pipeline: fuse-qkv+tome vs tome %.2e; +fp16 vs fp32 tome %.4f (cosine %.5f),"
                + " vs reference cosine %.5f%n", fusedDiff, PassTesting.maxRelDiff(halfOut, tomeOnly),
                cosine(halfOut.get("out_sample"), tomeOnly.get("out_sample")),
                cosine(halfOut.get("out_sample"), reference.get("out_sample")));
        assertThat(fusedDiff).isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(fusedAfterDiff).isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(cosine(halfOut.get("out_sample"), reference.get("out_sample"))).isGreaterThan(0.97);
    }

    @ParameterizedTest(name = "random={0}")
    @ValueSource(booleans = {false, true})
    void addsOnlyOpsTensorRtParses(boolean random) {
        OnnxModel model = PassTesting.load("tiny_sd_unet");
        Set<String> before = model.graph().opHistogram().keySet();
        new TokenMergingPass(0.5, 2, 2, random).apply(model);

        Set<String> added = new TreeSet<>();
        for (Node n : model.graph().nodes()) {
            if (n.name().startsWith(TokenMergingPass.NODE_PREFIX)) {
                added.add(n.opType());
            }
        }
        System.out.println("tome ops (random=" + random + "): " + added);
        assertThat(added).isNotEmpty().isSubsetOf(TokenMergingPass.TENSORRT_OPS)
                .doesNotContain("TopK", "ScatterElements", "ScatterND", "Scatter", "OneHot", "NonZero");
        Set<String> newTypes = new TreeSet<>(model.graph().opHistogram().keySet());
        newTypes.removeAll(before);
        assertThat(newTypes).isSubsetOf(TokenMergingPass.TENSORRT_OPS);
        assertThat(TokenMergingPass.TENSORRT_OPS).doesNotContain("TopK", "ScatterElements", "ScatterND");
    }

    @Test
    void parsesItsPipelineOptions() {
        PassPipeline pipeline = PassPipeline.parse("tome:ratio=0.5:max_downsample=1:stride=2:random=false");
        assertThat(pipeline.passes()).singleElement().isInstanceOf(TokenMergingPass.class);
        assertThat(((TokenMergingPass) PassPipeline.parse("tome").passes().get(0)).ratio()).isEqualTo(0.5);

        TokenMergingPass capped = (TokenMergingPass) PassPipeline.parse("tome:ratio=0.9").passes().get(0);
        assertThat(capped.ratio()).isEqualTo(TokenMergingPass.MAX_RATIO);
        OnnxModel model = PassTesting.load("tiny_sd_unet");
        assertThat(capped.apply(model).notes()).contains("ratio capped at 0.75");

        assertThatThrownBy(() -> PassPipeline.parse("tome:ratio=-0.1")).hasMessageContaining("ratio must be in [0, 1]");
        assertThatThrownBy(() -> PassPipeline.parse("tome:ratio=half")).hasMessageContaining("must be a number");
        assertThatThrownBy(() -> PassPipeline.parse("tome:random=yes")).hasMessageContaining("true or false");
        assertThatThrownBy(() -> PassPipeline.parse("tome:max_downsample=0")).hasMessageContaining("at least 1");
        assertThatThrownBy(() -> PassPipeline.parse("tome:seed=1")).hasMessageContaining("unknown option 'seed'");
    }

    /** Self-attentions whose token count is the latent's (16×16 = 256 in the fixtures). */
    private static int topLevelSelfAttentions(OnnxModel model) {
        OnnxChecker.inferShapes(model);
        int count = 0;
        for (Attention a : AttentionFinder.find(model.graph())) {
            if (a.kind() == Kind.SELF && a.querySource().shape().dim(1).value() == 256) {
                count++;
            }
        }
        return count;
    }

    private Map<String, Tensor> run(Path file, String fixture, long[] choiceTop, long[] choiceD2) {
        FixtureCase c = FixtureCase.named(fixture);
        Map<String, Tensor> feeds = new LinkedHashMap<>(c.inputs());
        feeds.put(TokenMergingPass.DST_INDEX_INPUT, Tensor.ofLongs(new long[] {8, 8}, choiceTop));
        feeds.put("tome_dst_index_d2", Tensor.ofLongs(new long[] {4, 4}, choiceD2));
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            return runner.run(feeds);
        }
    }

    /** A host draw: one offset in [0, 4) per cell. */
    private static long[] draw(int cells, long seed) {
        java.util.Random rnd = new java.util.Random(seed);
        long[] out = new long[cells];
        for (int i = 0; i < cells; i++) {
            out[i] = rnd.nextInt(4);
        }
        return out;
    }

    private static double cosine(Tensor a, Tensor b) {
        return Tensors.cosine(a.toFloatArray(), b.toFloatArray());
    }
}
