package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.DeepCacheSplitter.Cost;
import dev.sdrt.graphs.passes.DeepCacheSplitter.Split;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.pipeline.FeatureCacheDenoiser;
import dev.sdrt.runtime.pipeline.FeatureCacheSchedule;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class DeepCacheSplitterTest {
    @TempDir
    Path dir;

    /**
     * N = 1 exactness: full on the fixture's inputs, then shallow on the same inputs and the feature
     * full just produced, gives full's output; full itself is the original UNet.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "tiny_sd_unet, 2, 64, 16, 16",
        "tiny_sdxl_unet, 2, 64, 16, 16",
    })
    void shallowAfterFullIsExactOnFixtures(String fixture, long n, long c, long h, long w) {
        OnnxModel unet = PassTesting.load(fixture);
        int nodesBefore = unet.graph().nodes().size();

        Split split = DeepCacheSplitter.split(unet, 0);

        assertThat(unet.graph().nodes()).as("input model untouched").hasSize(nodesBefore);
        assertThat(unet.graph().value(DeepCacheSplitter.FEATURE)).isNull();
        assertThat(split.cachedFeatureName()).isEqualTo(DeepCacheSplitter.FEATURE);
        assertThat(split.cachedFeatureShape()).isEqualTo(Shape.of(n, c, h, w));
        assertThat(names(split.full().graph().outputs())).containsExactly("out_sample", DeepCacheSplitter.FEATURE);
        assertThat(names(split.shallow().graph().outputs())).containsExactly("out_sample");
        assertThat(names(split.shallow().graph().inputs())).containsAll(names(unet.graph().inputs()))
                .contains(DeepCacheSplitter.FEATURE).hasSize(unet.graph().inputs().size() + 1);
        assertThat(modules(split.shallow())).doesNotContain("mid_block", "down_blocks.1", "up_blocks.0")
                .contains("down_blocks.0", "up_blocks.1");
        assertThat(modules(split.full())).contains("mid_block", "down_blocks.1", "up_blocks.0");

        FixtureCase fc = FixtureCase.named(fixture);
        Map<String, Tensor> full = run(split.full(), fc.inputs());
        Tensor feature = full.get(DeepCacheSplitter.FEATURE);
        assertThat(feature.shape()).containsExactly(n, c, h, w);
        double fullVsOriginal = PassTesting.maxRelDiff(full, PassTesting.originalOutputs(fixture));
        fc.assertOutputsMatch(full, FixtureCase.FP32_TOLERANCE);

        Map<String, Tensor> shallowFeeds = new LinkedHashMap<>(fc.inputs());
        shallowFeeds.put(DeepCacheSplitter.FEATURE, feature);
        Tensor shallowOut = run(split.shallow(), shallowFeeds).get("out_sample");
        double shallowVsFull = Tensors.maxRelDiff(shallowOut, full.get("out_sample"));

        // the feature matters: a zero feature changes the output
        shallowFeeds.put(DeepCacheSplitter.FEATURE, Tensor.zeros(feature.dtype(), feature.shape()));
        double zeroFeature = Tensors.maxRelDiff(run(split.shallow(), shallowFeeds).get("out_sample"),
                full.get("out_sample"));

        Cost fullCost = DeepCacheSplitter.cost(split.full());
        Cost shallowCost = DeepCacheSplitter.cost(split.shallow());
        System.out.printf("[deepcache] %s branch 0: feature %s; full: %s; shallow: %s; full vs original %.3g,"
                + " shallow vs full %.3g, zero feature %.3g%n", fixture, split.cachedFeatureShape(), fullCost,
                shallowCost, fullVsOriginal, shallowVsFull, zeroFeature);

        assertThat(fullVsOriginal).isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(shallowVsFull).isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(zeroFeature).isGreaterThan(1e-3);
        assertThat(shallowCost.nodes()).isLessThan(fullCost.nodes());
        assertThat(shallowCost.convs()).isLessThan(fullCost.convs());
        assertThat(shallowCost.matMuls() + shallowCost.gemms()).isLessThan(fullCost.matMuls() + fullCost.gemms());
        assertThat(shallowCost.macs()).isLessThan(fullCost.macs());

        // the optimize passes run on each graph afterwards: cleanup keeps the pair exact, and folds the
        // shape arithmetic so that every Conv/MatMul has a static shape to cost
        new CleanupPass().apply(split.full());
        new CleanupPass().apply(split.shallow());
        Map<String, Tensor> cleanFull = run(split.full(), fc.inputs());
        shallowFeeds.put(DeepCacheSplitter.FEATURE, cleanFull.get(DeepCacheSplitter.FEATURE));
        double cleanShallowVsFull = Tensors.maxRelDiff(run(split.shallow(), shallowFeeds).get("out_sample"),
                cleanFull.get("out_sample"));
        Cost cleanFullCost = DeepCacheSplitter.cost(split.full());
        Cost cleanShallowCost = DeepCacheSplitter.cost(split.shallow());
        System.out.printf("[deepcache] %s branch 0 after cleanup: full: %s; shallow: %s (%.0f%% of full's MACs);"
                + " shallow vs full %.3g%n", fixture, cleanFullCost, cleanShallowCost,
                100.0 * cleanShallowCost.macs() / cleanFullCost.macs(), cleanShallowVsFull);
        assertThat(cleanShallowVsFull).isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(cleanFullCost.unknown()).isZero();
        assertThat(cleanShallowCost.macs()).isLessThan(cleanFullCost.macs());

        OnnxChecker.check(PassTesting.save(split.full(), dir));
        OnnxChecker.check(PassTesting.save(split.shallow(), dir));
        assertThat(split.full().metadata()).containsEntry(DeepCacheSplitter.META_ROLE, "full")
                .containsEntry(DeepCacheSplitter.META_BRANCH, "0");
        assertThat(split.shallow().metadata()).containsEntry(DeepCacheSplitter.META_ROLE, "shallow");
    }

    /**
     * The runtime side on real graphs: FeatureCacheDenoiser over two ONNX Runtime sessions, every
     * step on the same inputs, so each shallow step must reproduce the full step's output.
     */
    @Test
    void denoiserOverOrtRunnersReproducesFullOutputOnRepeatedInputs() {
        Split split = DeepCacheSplitter.split(PassTesting.load("tiny_sd_unet"), 0);
        FixtureCase fc = FixtureCase.named("tiny_sd_unet");
        try (OrtRunner full = OrtRunner.builder(PassTesting.save(split.full(), dir)).build();
                OrtRunner shallow = OrtRunner.builder(PassTesting.save(split.shallow(), dir)).build()) {
            FeatureCacheDenoiser denoiser = new FeatureCacheDenoiser(full::run, shallow::run,
                    FeatureCacheSchedule.uniform(3, 3));
            Tensor first = denoiser.step(0, fc.inputs()).get("out_sample");
            for (int step = 1; step < 3; step++) {
                Map<String, Tensor> out = denoiser.step(step, fc.inputs());
                assertThat(out).containsOnlyKeys("out_sample");
                assertThat(Tensors.maxRelDiff(out.get("out_sample"), first)).isLessThanOrEqualTo(PassTesting.EXACT);
            }
            assertThat(denoiser.fullRuns()).isEqualTo(1);
            assertThat(denoiser.shallowRuns()).isEqualTo(2);
            fc.assertOutputsMatch(Map.of("out_sample", first), FixtureCase.FP32_TOLERANCE);
        }
    }

    @ParameterizedTest(name = "branch {0}")
    @ValueSource(ints = {-1, 1, 5})
    void branchOutOfRangeSaysTheValidRange(int branch) {
        OnnxModel unet = PassTesting.load("tiny_sd_unet");
        assertThat(DeepCacheSplitter.maxBranch(unet)).isZero();
        assertThatThrownBy(() -> DeepCacheSplitter.split(unet, branch))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("DeepCache branch " + branch + " is out of range")
                .hasMessageContaining("L = 2 up blocks")
                .hasMessageContaining("0..0");
    }

    @Test
    void namesWithoutModulePathsAreRejected() {
        OnnxModel unet = PassTesting.load("tiny_sd_unet");
        int i = 0;
        for (Node n : unet.graph().nodes()) {
            n.setName("node_" + i++);
        }
        assertThatThrownBy(() -> DeepCacheSplitter.split(unet, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no node name carries a diffusers module path")
                .hasMessageContaining("node_0");
    }

    @Test
    void alreadySplitGraphIsRejected() {
        OnnxModel full = DeepCacheSplitter.split(toyUnet(3, false, false), 0).full();
        assertThatThrownBy(() -> DeepCacheSplitter.split(full, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("already has a value named deepcache_feature");
    }

    /** Three levels, sdrt-style names: every branch cuts where it should and is exact. */
    @ParameterizedTest(name = "branch {0}")
    @CsvSource({
        "0, 'conv_in,down_blocks.0,up_blocks.2,conv_out', /up_blocks.1/upsamplers.0/Mul",
        "1, 'conv_in,down_blocks.0,down_blocks.1,up_blocks.1,up_blocks.2,conv_out', /up_blocks.0/upsamplers.0/Mul",
    })
    void cutsEachBranchOfADeeperUnet(int branch, String kept, String featureProducer) {
        OnnxModel unet = toyUnet(3, false, false);
        assertThat(DeepCacheSplitter.maxBranch(unet)).isEqualTo(1);

        Split split = DeepCacheSplitter.split(unet, branch);

        assertThat(split.full().graph().requireValue(DeepCacheSplitter.FEATURE).producer().name())
                .isEqualTo(featureProducer);
        assertThat(split.shallow().graph().nodes().stream().map(n -> n.name().split("/")[1]).distinct().toList())
                .containsExactlyInAnyOrder(kept.split(","));
        assertThat(split.cachedFeatureShape()).isEqualTo(Shape.of(1, 1, 2, 2));
        Map<String, Tensor> feeds = Map.of("sample",
                Tensor.ofFloats(new long[] {1, 1, 2, 2}, new float[] {0.5f, -1, 2, 0.25f}));
        Map<String, Tensor> full = run(split.full(), feeds);
        Map<String, Tensor> shallowFeeds = new LinkedHashMap<>(feeds);
        shallowFeeds.put(DeepCacheSplitter.FEATURE, full.get(DeepCacheSplitter.FEATURE));
        assertThat(Tensors.maxRelDiff(run(split.shallow(), shallowFeeds).get("out_sample"), full.get("out_sample")))
                .isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(Tensors.maxRelDiff(full.get("out_sample"), run(unet, feeds).get("out_sample"))).isZero();
    }

    /** With dynamic shapes the feature input takes the sample's symbolic batch (and, at branch 0, height and width). */
    @ParameterizedTest(name = "branch {0}")
    @ValueSource(ints = {0, 1})
    void featureInputKeepsTheSamplesDimensionNames(int branch) {
        OnnxModel unet = toyUnet(3, false, true);

        Split split = DeepCacheSplitter.split(unet, branch);

        Shape shape = split.cachedFeatureShape();
        assertThat(shape.dim(0).param()).isEqualTo("batch");
        assertThat(shape.dim(1).value()).isEqualTo(1);
        if (branch == 0) {
            assertThat(shape).isEqualTo(Shape.mixed("batch", 1, "height", "width"));
        }
        assertThat(split.shallow().graph().requireValue(DeepCacheSplitter.FEATURE).shape()).isEqualTo(shape);
        Map<String, Tensor> feeds = Map.of("sample", Tensor.ofFloats(new long[] {2, 1, 1, 3}, new float[] {1, 2, 3, 4, 5, 6}));
        Map<String, Tensor> full = run(split.full(), feeds);
        Map<String, Tensor> shallowFeeds = new LinkedHashMap<>(feeds);
        shallowFeeds.put(DeepCacheSplitter.FEATURE, full.get(DeepCacheSplitter.FEATURE));
        assertThat(Tensors.maxRelDiff(run(split.shallow(), shallowFeeds).get("out_sample"), full.get("out_sample")))
                .isLessThanOrEqualTo(PassTesting.EXACT);
    }

    /** A shallow layer that also reads the mid block directly cannot be cut: the error names what remains. */
    @Test
    void uncleanCutIsRejected() {
        OnnxModel unet = toyUnet(2, true, false);
        assertThatThrownBy(() -> DeepCacheSplitter.split(unet, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("read values computed on the deep path")
                .hasMessageContaining("/mid_block/Relu");
    }

    // ---------------- helpers ----------------

    private Map<String, Tensor> run(OnnxModel model, Map<String, Tensor> feeds) {
        try (OrtRunner runner = OrtRunner.builder(PassTesting.save(model, dir)).build()) {
            return runner.run(feeds);
        }
    }

    private static List<String> names(List<Value> values) {
        return values.stream().map(Value::name).toList();
    }

    private static List<String> modules(OnnxModel model) {
        return model.graph().nodes().stream().map(DeepCacheSplitter::moduleOf).filter(m -> m != null).distinct().toList();
    }

    /**
     * A UNet-shaped chain on [N,1,H,W] tensors with sdrt-style module names: conv_in, {@code levels}
     * down blocks (two skips each), mid_block, {@code levels} up blocks (each concatenates the
     * running tensor with a skip, reduces back to one channel, adds another skip, and ends in an
     * "upsampler" except the last), conv_out. Shapes are [1,1,2,2], or [batch,1,height,width] when
     * {@code dynamic}. With {@code leak}, the last up block also reads the mid block's output.
     */
    private static OnnxModel toyUnet(int levels, boolean leak, boolean dynamic) {
        Graph g = new Graph("toy_unet");
        Random random = new Random(3);
        Shape shape = dynamic ? Shape.mixed("batch", 1, "height", "width") : Shape.of(1, 1, 2, 2);
        Value x = g.addInput("sample", DataType.FLOAT, shape);
        Value h = g.op("Add", "/conv_in/Add", x, weight(g, random, 1));
        List<Value> skips = new ArrayList<>(List.of(h));
        for (int i = 0; i < levels; i++) {
            h = g.op("Mul", "/down_blocks." + i + "/resnets.0/Mul", h, weight(g, random, 1));
            skips.add(h);
            h = g.op("Tanh", "/down_blocks." + i + "/downsamplers.0/Tanh", h);
            skips.add(h);
        }
        h = g.op("Relu", "/mid_block/Relu", g.op("Add", "/mid_block/Add", h, weight(g, random, 1)));
        Value mid = h;
        for (int i = 0; i < levels; i++) {
            String m = "/up_blocks." + i;
            Value cat = g.op("Concat", m + "/Concat", List.of(h, skips.remove(skips.size() - 1)), Map.of("axis", 1L));
            h = g.op("Mul", m + "/resnets.0/Mul", cat, weight(g, random, 2));
            h = g.op("ReduceSum", m + "/resnets.0/ReduceSum", List.of(h, g.constant("axes", TensorData.vector(1))),
                    Map.of("keepdims", 1L));
            h = g.op("Add", m + "/resnets.1/Add", h, skips.remove(skips.size() - 1));
            if (i < levels - 1) {
                h = g.op("Mul", m + "/upsamplers.0/Mul", h, weight(g, random, 1));
            } else if (leak) {
                h = g.op("Add", m + "/resnets.1/Leak", h, mid);
            }
        }
        Value y = g.op("Mul", "/conv_out/Mul", h, weight(g, random, 1));
        g.rename(y, "out_sample");
        y.setTypeAndShape(DataType.FLOAT, shape);
        g.addOutput(y);
        return new OnnxModel(g, 17);
    }

    /** A [1,channels,1,1] weight. */
    private static Value weight(Graph g, Random random, int channels) {
        float[] w = new float[channels];
        for (int i = 0; i < w.length; i++) {
            w[i] = 0.5f + random.nextFloat();
        }
        return g.constant("w", TensorData.ofFloats(new long[] {1, channels, 1, 1}, w));
    }
}
