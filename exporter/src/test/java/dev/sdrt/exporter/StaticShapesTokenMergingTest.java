package dev.sdrt.exporter;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder;
import dev.sdrt.graphs.analysis.AttentionFinder.Attention;
import dev.sdrt.graphs.analysis.AttentionFinder.Kind;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.graphs.passes.PassResult;
import dev.sdrt.graphs.passes.StaticShapesPass;
import dev.sdrt.graphs.passes.TokenMergingPass;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * sdrt's own exports have symbolic axes, which token merging cannot plan on; {@code static-shapes}
 * pins them, after which {@code tome} merges the exported tiny UNet and it still runs on ONNX
 * Runtime with the pinned shapes.
 */
class StaticShapesTokenMergingTest {
    /** Guidance doubles the batch: one image → 2; 16×16 pixels → 8×8 latents (tiny's VAE factor 2). */
    private static final int BATCH = 2;
    private static final int LATENT = 8;
    private static final int SEQUENCE = 77;

    @TempDir
    Path dir;

    @Test
    void pinnedExportMergesTokensAndRunsOnOnnxRuntime() throws Exception {
        OnnxModel model = Exporter.random("tiny", Component.UNET, 0, ExportOptions.defaults()).model();
        assertThat(model.graph().value("sample").shape()).isEqualTo(Shape.mixed("batch", 4, "height", "width"));
        Map<String, Tensor> feeds = feeds();
        Map<String, Tensor> dynamic = run(model, "dynamic", feeds);

        // as exported, nothing to merge: the token counts are symbolic
        OnnxModel untouched = Exporter.random("tiny", Component.UNET, 0, ExportOptions.defaults()).model();
        PassResult unpinned = new TokenMergingPass().apply(untouched);
        assertThat(unpinned.matched()).isZero();
        assertThat(unpinned.changes()).isZero();

        // pinning is exact: the same outputs at the pinned sizes
        String pin = "static-shapes:batch=" + BATCH + ":height=" + LATENT + ":width=" + LATENT + ":sequence=" + SEQUENCE;
        List<PassResult> pinned = PassPipeline.parse(pin + ",cleanup").run(model);
        assertThat(pinned.get(0).matched()).isEqualTo(4);
        assertThat(pinned.get(0).notes().get(0)).startsWith("pinned batch=2, height=8, width=8, sequence=77");
        assertThat(model.graph().value("sample").shape()).isEqualTo(Shape.of(BATCH, 4, LATENT, LATENT));
        assertThat(model.graph().value("out_sample").shape()).isEqualTo(Shape.of(BATCH, 4, LATENT, LATENT));
        assertThat(model.metadata()).containsEntry(StaticShapesPass.METADATA_KEY, "batch=2;height=8;width=8;sequence=77");
        OnnxChecker.inferShapes(model);
        model.graph().values().values().forEach(v -> assertThat(v.shape() != null && v.shape().isFullyFixed())
                .as(v.name() + " " + v.shape()).isTrue());
        assertThat(Tensors.maxRelDiff(run(model, "pinned", feeds).get("out_sample"), dynamic.get("out_sample")))
                .isLessThanOrEqualTo(1e-5);
        assertThat(PassPipeline.parse(pin).run(model).get(0).changes()).as("second run").isZero();

        // now tome merges every top-level self-attention: 8×8 = 64 tokens → 32
        List<Attention> before = AttentionFinder.find(model.graph()).stream().filter(a -> a.kind() == Kind.SELF).toList();
        long topLevel = before.stream().filter(a -> a.querySource().shape().dim(1).value() == LATENT * LATENT).count();
        assertThat(topLevel).isPositive();
        PassResult tome = PassPipeline.parse("tome:ratio=0.5").run(model).get(0);
        assertThat(tome.matched()).isEqualTo((int) topLevel);
        assertThat(tome.notes().get(0)).startsWith("merged " + topLevel + " of " + before.size() + " self-attentions");

        OnnxChecker.inferShapes(model);
        int shortened = 0;
        for (Attention a : AttentionFinder.find(model.graph())) {
            Shape scores = a.scores().output(0).shape();
            if (a.kind() == Kind.SELF && scores.dim(2).value() == LATENT * LATENT / 2) {
                assertThat(scores.dim(3).value()).isEqualTo(LATENT * LATENT / 2);
                assertThat(a.querySource().shape().dim(1).value()).isEqualTo(LATENT * LATENT / 2);
                assertThat(a.querySource().producer().opType()).isEqualTo("Concat");
                shortened++;
            }
        }
        assertThat(shortened).isEqualTo((int) topLevel);

        Path merged = dir.resolve("merged.onnx");
        model.save(merged);
        OnnxChecker.check(merged);
        try (OrtRunner runner = OrtRunner.builder(merged).build()) {
            Tensor out = runner.run(feeds).get("out_sample");
            assertThat(out.shape()).containsExactly(BATCH, 4, LATENT, LATENT);
            double cosine = Tensors.cosine(out.toFloatArray(), dynamic.get("out_sample").toFloatArray());
            assertThat(cosine).as("merged UNet output against the unmerged one").isGreaterThan(0.5);
            // the pinned graph takes the pinned sizes only
            Map<String, Tensor> other = new LinkedHashMap<>(feeds);
            other.put("sample", Tensor.ofFloats(new long[] {BATCH, 4, 2 * LATENT, 2 * LATENT}, new float[BATCH * 4 * 4 * LATENT * LATENT]));
            assertThatThrownBy(() -> runner.run(other)).isInstanceOf(RuntimeException.class);
        }
    }

    private Map<String, Tensor> run(OnnxModel model, String name, Map<String, Tensor> feeds) throws IOException {
        Path file = dir.resolve(name + ".onnx");
        model.save(file);
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            return runner.run(feeds);
        }
    }

    private static Map<String, Tensor> feeds() {
        Random random = new Random(3);
        Map<String, Tensor> feeds = new LinkedHashMap<>();
        feeds.put("sample", Tensor.ofFloats(new long[] {BATCH, 4, LATENT, LATENT}, gaussian(random, BATCH * 4 * LATENT * LATENT)));
        feeds.put("timestep", Tensor.ofFloats(new long[] {BATCH}, new float[] {500, 500}));
        feeds.put("encoder_hidden_states", Tensor.ofFloats(new long[] {BATCH, SEQUENCE, 32}, gaussian(random, BATCH * SEQUENCE * 32)));
        return feeds;
    }

    private static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }
}
