package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The merge and unmerge ops alone, on a hand-made graph x → merge → MatMul(W) → unmerge, against
 * a plain-Java bipartite soft matching written the way tomesd writes it (sort, gather, scatter).
 */
class TokenMergingBuilderTest {
    private static final int BATCH = 2;
    private static final int C = 8;
    private static final int C_OUT = 5;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}×{1} stride {2}, r={3}, choice {4}")
    @CsvSource({
        "4, 4, 2, 6, top-left",   // N=16: 12 sources, 4 destinations
        "4, 4, 2, 1, top-left",
        "4, 4, 2, 12, top-left",  // every source merged: no kept sources at all
        "4, 4, 2, 8, random",
        "5, 5, 2, 10, random",    // 5×5: a row and a column outside the 2×2 cells, all sources
        "6, 4, 3, 9, random",     // 3×3 cells on a 6×4 grid
    })
    void mergeAndUnmergeMatchPlainBipartiteSoftMatching(int h, int w, int stride, int r, String choiceKind) {
        TokenMergingLayout layout = new TokenMergingLayout(h, w, stride, stride);
        Random rnd = new Random(h * 1000L + w * 100L + r * 10L + stride);
        long[] choice = new long[layout.cells()];
        if (choiceKind.equals("random")) {
            for (int i = 0; i < choice.length; i++) {
                choice[i] = rnd.nextInt(layout.cellSize());
            }
        }
        int n = h * w;
        float[][][] x = new float[BATCH][n][C];
        for (float[][] row : x) {
            for (float[] token : row) {
                for (int c = 0; c < C; c++) {
                    token[c] = (float) rnd.nextGaussian();
                }
            }
        }
        float[] weight = new float[C * C_OUT];
        for (int i = 0; i < weight.length; i++) {
            weight[i] = (float) rnd.nextGaussian();
        }

        Graph g = new Graph("tome_merge_step");
        Value input = g.addInput("x", DataType.FLOAT, Shape.of(BATCH, n, C));
        Value choiceInput = null;
        TokenMergingBuilder.Indices indices;
        if (choiceKind.equals("random")) {
            choiceInput = g.addInput("choice", DataType.INT64, Shape.of(layout.cellsY(), layout.cellsX()));
            indices = TokenMergingBuilder.computedIndices(g, 17, layout, choiceInput, "tome/grid");
        } else {
            indices = TokenMergingBuilder.constantIndices(g, layout, "tome/grid");
        }
        TokenMergingBuilder builder = new TokenMergingBuilder(g, 17, "tome/b0", DataType.FLOAT, Dim.of(BATCH), C, r, indices);
        Value merged = builder.merge(input);
        Value projected = g.op("MatMul", "project", merged, g.constant("w", TensorData.ofFloats(new long[] {C, C_OUT},
                weight)));
        projected.setTypeAndShape(DataType.FLOAT, Shape.of(BATCH, n - r, C_OUT));
        Value restored = builder.unmerge(projected, C_OUT, DataType.FLOAT);
        g.addOutput(merged);
        g.addOutput(restored);
        OnnxModel model = new OnnxModel(g, 17);
        Path file = PassTesting.save(model, dir);
        OnnxChecker.check(file);

        Map<String, Tensor> feeds = new LinkedHashMap<>();
        feeds.put("x", Tensor.ofFloats(new long[] {BATCH, n, C}, flatten(x)));
        if (choiceInput != null) {
            feeds.put("choice", Tensor.ofLongs(new long[] {layout.cellsY(), layout.cellsX()}, choice));
        }
        Map<String, Tensor> out;
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            out = runner.run(feeds);
        }

        Reference ref = new Reference(x, layout, choice, r);
        float[][][] expectedMerged = ref.merge(x);
        float[][][] expectedProjected = matmul(expectedMerged, weight);
        float[][][] expectedRestored = ref.unmerge(expectedProjected);
        assertThat(out.get(merged.name()).shape()).containsExactly(BATCH, n - r, C);
        assertThat(out.get(restored.name()).shape()).containsExactly(BATCH, n, C_OUT);
        assertClose(out.get(merged.name()).toFloatArray(), flatten(expectedMerged));
        assertClose(out.get(restored.name()).toFloatArray(), flatten(expectedRestored));
    }

    /**
     * A 1024² SD 1.x latent's top level: 128×128 tokens, 12,288 sources, r = 8,192 merged and
     * 4,096 kept at ratio 0.5, both beyond TensorRT's TopK limit of 3840. The ops need no k at
     * all; the graph is valid, its shapes static but for the batch, and no TopK or scatter appears.
     */
    @Test
    void buildsForTheLargestGridWithoutTopK() {
        TokenMergingLayout layout = new TokenMergingLayout(128, 128, 2, 2);
        int r = 8192;
        assertThat(layout.numSrc()).isEqualTo(12288);
        assertThat(r).isGreaterThan(3840);
        assertThat(layout.numSrc() - r).isGreaterThan(3840);
        Graph g = new Graph("tome_1024");
        Value x = g.addInput("x", DataType.FLOAT16, Shape.mixed("batch", 16384L, 320L));
        Value choice = g.addInput("choice", DataType.INT64, Shape.of(64, 64));
        TokenMergingBuilder.Indices indices = TokenMergingBuilder.computedIndices(g, 18, layout, choice, "tome/grid");
        TokenMergingBuilder builder = new TokenMergingBuilder(g, 18, "tome/b0", DataType.FLOAT16, Dim.symbolic("batch"),
                320, r, indices);
        Value merged = builder.merge(x);
        Value restored = builder.unmerge(merged, 320, DataType.FLOAT16);
        g.addOutput(merged);
        g.addOutput(restored);
        OnnxModel model = new OnnxModel(g, 18);
        OnnxChecker.check(PassTesting.save(model, dir));
        OnnxChecker.inferShapes(model);

        assertThat(merged.shape()).isEqualTo(Shape.mixed("batch", 8192L, 320L));
        assertThat(restored.shape()).isEqualTo(Shape.mixed("batch", 16384L, 320L));
        assertThat(g.opHistogram().keySet()).isSubsetOf(TokenMergingPass.TENSORRT_OPS);
        long largestConstant = g.initializers().stream().mapToLong(v -> v.constant().numElements()).max().orElseThrow();
        assertThat(largestConstant).as("no Ns × Ns constant").isLessThanOrEqualTo(16384);
    }

    /** The split of the computed layout equals the constant one for the same choice. */
    @Test
    void layoutSplitsEveryPositionOnce() {
        TokenMergingLayout layout = new TokenMergingLayout(5, 7, 2, 2);
        long[] choice = {3, 0, 1, 2, 2, 1};
        long[] src = layout.srcPositions(choice);
        long[] dst = layout.dstPositions(choice);
        assertThat(src).hasSize(35 - 6);
        assertThat(dst).hasSize(6);
        long[] all = new long[35];
        System.arraycopy(src, 0, all, 0, src.length);
        System.arraycopy(dst, 0, all, src.length, dst.length);
        Arrays.sort(all);
        for (int p = 0; p < 35; p++) {
            assertThat(all[p]).isEqualTo(p);
        }
        long[] base = layout.positionSrcBase();
        long[] offset = layout.positionOffset();
        long[] cell = layout.positionCell();
        long[] srcIndex = layout.srcIndexOfPosition(choice);
        for (int p = 0; p < 35; p++) {
            boolean isDst = offset[p] == choice[(int) cell[p]];
            assertThat(layout.isDstPosition(choice)[p]).isEqualTo(isDst);
            if (!isDst) {
                assertThat(base[p] - (offset[p] > choice[(int) cell[p]] ? 1 : 0)).isEqualTo(srcIndex[p]);
            }
        }
    }

    private static void assertClose(float[] actual, float[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < actual.length; i++) {
            assertThat((double) actual[i]).as("element %d", i).isCloseTo(expected[i],
                    org.assertj.core.data.Offset.offset(1e-5 * Math.max(1, Math.abs(expected[i]))));
        }
    }

    private static float[] flatten(float[][][] t) {
        int b = t.length;
        int n = t[0].length;
        int c = t[0][0].length;
        float[] out = new float[b * n * c];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < n; j++) {
                System.arraycopy(t[i][j], 0, out, (i * n + j) * c, c);
            }
        }
        return out;
    }

    private static float[][][] matmul(float[][][] x, float[] w) {
        float[][][] out = new float[x.length][x[0].length][C_OUT];
        for (int b = 0; b < x.length; b++) {
            for (int t = 0; t < x[b].length; t++) {
                for (int o = 0; o < C_OUT; o++) {
                    double s = 0;
                    for (int c = 0; c < C; c++) {
                        s += (double) x[b][t][c] * w[c * C_OUT + o];
                    }
                    out[b][t][o] = (float) s;
                }
            }
        }
        return out;
    }

    /**
     * tomesd's {@code bipartite_soft_matching_random2d}, per batch row: destinations one per cell
     * (listed by cell), sources the other tokens (raster order), cosine similarity, each source's
     * best destination, sources sorted by it (stable, descending), the first r mean-merged.
     */
    static final class Reference {
        final int[] srcPos;
        final int[] dstPos;
        final int r;
        final int[][] keptSrc;   // [b][N_src - r] source indices, sorted order
        final int[][] mergedSrc; // [b][r]
        final int[][] mergedInto; // [b][r] destination of each merged source

        Reference(float[][][] x, TokenMergingLayout layout, long[] choice, int r) {
            this.r = r;
            int n = layout.tokens();
            dstPos = Arrays.stream(layout.dstPositions(choice)).mapToInt(Math::toIntExact).toArray();
            boolean[] isDst = new boolean[n];
            for (int p : dstPos) {
                isDst[p] = true;
            }
            List<Integer> src = new ArrayList<>();
            for (int p = 0; p < n; p++) {
                if (!isDst[p]) {
                    src.add(p);
                }
            }
            srcPos = src.stream().mapToInt(Integer::intValue).toArray();
            int ns = srcPos.length;
            keptSrc = new int[x.length][];
            mergedSrc = new int[x.length][];
            mergedInto = new int[x.length][];
            for (int b = 0; b < x.length; b++) {
                double[] best = new double[ns];
                int[] bestDst = new int[ns];
                for (int i = 0; i < ns; i++) {
                    best[i] = Double.NEGATIVE_INFINITY;
                    for (int d = 0; d < dstPos.length; d++) {
                        double s = Tensors.cosine(x[b][srcPos[i]], x[b][dstPos[d]]);
                        if (s > best[i]) {
                            best[i] = s;
                            bestDst[i] = d;
                        }
                    }
                }
                Integer[] order = new Integer[ns];
                for (int i = 0; i < ns; i++) {
                    order[i] = i;
                }
                Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -best[i])); // stable
                mergedSrc[b] = new int[r];
                mergedInto[b] = new int[r];
                keptSrc[b] = new int[ns - r];
                for (int k = 0; k < ns; k++) {
                    if (k < r) {
                        mergedSrc[b][k] = order[k];
                        mergedInto[b][k] = bestDst[order[k]];
                    } else {
                        keptSrc[b][k - r] = order[k];
                    }
                }
            }
        }

        float[][][] merge(float[][][] x) {
            int c = x[0][0].length;
            int kept = srcPos.length - r;
            float[][][] out = new float[x.length][kept + dstPos.length][c];
            for (int b = 0; b < x.length; b++) {
                for (int k = 0; k < kept; k++) {
                    out[b][k] = x[b][srcPos[keptSrc[b][k]]].clone();
                }
                double[][] sum = new double[dstPos.length][c];
                int[] count = new int[dstPos.length];
                for (int d = 0; d < dstPos.length; d++) {
                    for (int j = 0; j < c; j++) {
                        sum[d][j] = x[b][dstPos[d]][j];
                    }
                    count[d] = 1;
                }
                for (int k = 0; k < r; k++) {
                    int d = mergedInto[b][k];
                    for (int j = 0; j < c; j++) {
                        sum[d][j] += x[b][srcPos[mergedSrc[b][k]]][j];
                    }
                    count[d]++;
                }
                for (int d = 0; d < dstPos.length; d++) {
                    for (int j = 0; j < c; j++) {
                        out[b][kept + d][j] = (float) (sum[d][j] / count[d]);
                    }
                }
            }
            return out;
        }

        float[][][] unmerge(float[][][] y) {
            int c = y[0][0].length;
            int kept = srcPos.length - r;
            int n = srcPos.length + dstPos.length;
            float[][][] out = new float[y.length][n][];
            for (int b = 0; b < y.length; b++) {
                for (int d = 0; d < dstPos.length; d++) {
                    out[b][dstPos[d]] = y[b][kept + d].clone();
                }
                for (int k = 0; k < kept; k++) {
                    out[b][srcPos[keptSrc[b][k]]] = y[b][k].clone();
                }
                for (int k = 0; k < r; k++) {
                    out[b][srcPos[mergedSrc[b][k]]] = y[b][kept + mergedInto[b][k]].clone();
                }
                for (float[] token : out[b]) {
                    assertThat(token).hasSize(c);
                }
            }
            return out;
        }
    }
}
