package dev.sdrt.calibration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The combine rules, SmoothQuant's formula, the fidelity numbers and the prompt lists, on small hand-made inputs. */
class MethodsAndReportsTest {
    // amax[prompt][step]: two prompts, four steps; step 0 is the wide, noisy one.
    static final float[][] AMAX = {{10, 4, 3, 2}, {8, 6, 1, 2}};

    @Test
    void combineRules() {
        assertThat(CalibrationMethod.parse("max").combine(AMAX)).isEqualTo(10f);
        // per-step means 9, 5, 2, 2 → min 2
        assertThat(CalibrationMethod.parse("mean-min").combine(AMAX)).isEqualTo(2f);
        // sorted 1 2 2 3 4 6 8 10; rank 0.5·7 = 3.5 → 3 + 0.5·(4 − 3)
        assertThat(CalibrationMethod.parse("percentile:50").combine(AMAX)).isEqualTo(3.5f);
        assertThat(CalibrationMethod.parse("percentile:100").combine(AMAX)).isEqualTo(10f);
        // rank 0.999·7 = 6.993 → 8 + 0.993·2
        assertThat(CalibrationMethod.parse("percentile:99.9").combine(AMAX)).isCloseTo(9.986f, within(1e-4f));
        assertThat(CalibrationMethod.parse(" Percentile:99.9 ").spec()).isEqualTo("percentile:99.9");
        assertThat(CalibrationMethod.parse("percentile:99").spec()).isEqualTo("percentile:99");
    }

    @Test
    void amaxStaysPositiveForTheScalesFile() {
        ActivationStatistics stats = new ActivationStatistics(2, 2);
        stats.add(0, 0, observation(0, 3));
        stats.add(0, 1, observation(0, 0));
        stats.add(1, 0, observation(0, 5));
        stats.add(1, 1, observation(0, 0));
        assertThatThrownBy(() -> stats.add(1, 1, observation(0, 0))).hasMessageContaining("already recorded");
        CalibrationResult r = CalibrationResult.compute(stats, new Graph("g"), CalibrationMethod.parse("mean-min"), null);
        assertThat(r.amax()).containsEntry("dead", CalibrationResult.ZERO_TENSOR_AMAX).containsEntry("late", 5f);
        ActivationStatistics partial = new ActivationStatistics(1, 2);
        partial.add(0, 0, observation(1, 1));
        assertThatThrownBy(() -> CalibrationResult.compute(partial, new Graph("g"), new CalibrationMethod.Max(), null))
                .hasMessageContaining("incomplete");
    }

    private static TappedModel.Observation observation(float dead, float late) {
        return new TappedModel.Observation(new java.util.LinkedHashMap<>(java.util.Map.of("dead", dead, "late", late)), java.util.Map.of());
    }

    @Test
    void smoothQuantFactorsFollowTheFormula() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(1, 3, 2));
        // W [2, 3]: row maxima 4 and 0.5
        Value w = g.addInitializer("w", TensorData.ofFloats(new long[] {2, 3}, 1, -4, 2, 0.5f, 0.25f, -0.1f));
        Value w2 = g.addInitializer("w2", TensorData.ofFloats(new long[] {2, 1}, 2, 8));
        g.addOutput(g.op("MatMul", "q", x, w));
        g.addOutput(g.op("MatMul", "k", x, w2));
        assertThat(QuantTargets.smoothable(g)).containsExactly(x);
        assertThat(SmoothQuant.weightRowMax(g, "x")).containsExactly(4f, 8f);
        assertThat(SmoothQuant.weightsOf(g, "x")).containsExactly("w", "w2");
        float[] s = SmoothQuant.factors(g, "x", new float[] {16, 0}, 0.5);
        assertThat(s[0]).isCloseTo((float) (Math.sqrt(16) / Math.sqrt(4)), within(1e-6f));
        assertThat(s[1]).as("a channel that never fired keeps 1").isEqualTo(1f);
        assertThat(SmoothQuant.smoothedMax(new float[] {16, 3}, s)).isEqualTo(8f);
        assertThatThrownBy(() -> SmoothQuant.factors(g, "x", new float[] {1, 1}, 1.5)).hasMessageContaining("alpha");
    }

    @Test
    void fidelityNumbers() {
        float[] a = {1, 2, 3, 4};
        assertThat(FidelityReport.cosine(a, a)).isCloseTo(1, within(1e-12));
        assertThat(FidelityReport.cosine(a, new float[] {-1, -2, -3, -4})).isCloseTo(-1, within(1e-12));
        assertThat(FidelityReport.cosine(new float[2], new float[2])).isEqualTo(1);
        assertThat(FidelityReport.psnr(a, a)).isInfinite();
        // range 3, every value off by 0.3 → MSE 0.09 → 10·log10(9 / 0.09) = 20 dB
        assertThat(FidelityReport.psnr(a, new float[] {1.3f, 2.3f, 3.3f, 4.3f})).isCloseTo(20, within(1e-4));
        byte[] img = {0, (byte) 255, 10, 20};
        byte[] off = {0, (byte) 254, 10, 20};
        assertThat(FidelityReport.psnr8(img, off)).isCloseTo(10 * Math.log10(255.0 * 255 / 0.25), within(1e-9));
        FidelityReport r = FidelityReport.of(a, a, img, off);
        assertThat(r.toString()).contains("latents cos 1.00000 psnr inf").contains("image cos");
        assertThatThrownBy(() -> FidelityReport.cosine(a, new float[3])).hasMessageContaining("different lengths");
    }

    @Test
    void fidelityOverABatchOfImages() {
        float[] a = {1, -2, 3, 0.5f};
        byte[][] images = {{0, 10, (byte) 200, (byte) 255}, {(byte) 128, 64, 32, 16}};
        byte[][] copies = {images[0].clone(), images[1].clone()};
        FidelityReport same = FidelityReport.of(a, a.clone(), images, copies);
        assertThat(same.latentCosine()).isEqualTo(1.0);
        assertThat(same.latentPsnr()).isInfinite();
        assertThat(same.imageCosine()).isCloseTo(1, within(1e-12));
        assertThat(same.imagePsnr()).isInfinite();

        byte[][] oneOff = {{1, 10, (byte) 200, (byte) 255}, images[1].clone()};
        FidelityReport off = FidelityReport.of(a, new float[] {1.1f, -2, 3, 0.5f}, images, oneOff);
        // peak = range 5, MSE = 0.01 / 4: 10·log10(25 / 0.0025) = 40 dB
        assertThat(off.latentPsnr()).isCloseTo(40, within(0.01));
        // one pixel off by 1 among 8: MSE 1/8 on peak 255
        assertThat(off.imagePsnr()).isCloseTo(10 * Math.log10(255.0 * 255 * 8), within(1e-9));
        assertThatThrownBy(() -> FidelityReport.of(a, a, images, new byte[][] {images[0]})).hasMessageContaining("different lengths");
    }

    @Test
    void imageCosineIsTakenOnCentredPixels() {
        // A bright and a dark flat picture are opposite around mid-grey, not 'alike' because all bytes are positive.
        byte[][] bright = {{(byte) 255, (byte) 255, (byte) 255}};
        byte[][] dark = {{0, 0, 0}};
        assertThat(FidelityReport.imageCosine(bright, dark)).isCloseTo(-1, within(1e-12));
        byte[][] ramp = {{0, (byte) 128, (byte) 255}};
        byte[][] reversed = {{(byte) 255, (byte) 128, 0}};
        assertThat(FidelityReport.imageCosine(ramp, reversed)).isLessThan(-0.99);
    }

    @Test
    void promptLists() {
        List<String> defaults = Prompts.defaults();
        assertThat(defaults).hasSize(32).doesNotHaveDuplicates().allSatisfy(p -> assertThat(p).isNotBlank().doesNotStartWith("#"));
        assertThat(Prompts.parse("# comment\n  a cat  \n\n#another\r\na dog\n", "t")).containsExactly("a cat", "a dog");
    }
}
