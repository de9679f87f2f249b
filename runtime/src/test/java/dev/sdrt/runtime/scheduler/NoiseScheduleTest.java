package dev.sdrt.runtime.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class NoiseScheduleTest {

    private static final NoiseSchedule SD = NoiseSchedule.of(SchedulerConfig.stableDiffusion());

    /** ᾱ_t of Stable Diffusion's schedule written out: β_s = (√0.00085 + s·(√0.012 − √0.00085)/999)². */
    private static double sdAlphaCumprod(int t) {
        double product = 1;
        for (int s = 0; s <= t; s++) {
            double root = Math.sqrt(0.00085) + s * (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999;
            product *= 1 - root * root;
        }
        return product;
    }

    @Test
    void stableDiffusionAlphasCumprod() {
        assertThat(SD.trainSteps()).isEqualTo(1000);
        assertThat(SD.alphaCumprod(0)).isCloseTo(0.99915, within(1e-15));
        assertThat(SD.beta(999)).isCloseTo(0.012, within(1e-15));
        for (int t : new int[] {1, 250, 500, 981, 999}) {
            assertThat(SD.alphaCumprod(t)).isCloseTo(sdAlphaCumprod(t), within(1e-12 * sdAlphaCumprod(t)));
        }
        // Also what numpy gives in float64 and torch in float32 (0.00466009).
        assertThat(SD.alphaCumprod(999)).isCloseTo(0.0046601, within(1e-7));
    }

    @Test
    void sigmaIsTheVarianceExplodingNoiseLevel() {
        double alphaCumprod = SD.alphaCumprod(999);
        assertThat(SD.sigma(999)).isCloseTo(Math.sqrt((1 - alphaCumprod) / alphaCumprod), within(1e-12));
        assertThat(SD.sigma(999)).isCloseTo(14.6146, within(1e-4));
        assertThat(SD.sigma(0)).isCloseTo(Math.sqrt(0.00085 / 0.99915), within(1e-15));
        double[] sigmas = SD.sigmas();
        for (int t = 1; t < sigmas.length; t++) {
            assertThat(sigmas[t]).isGreaterThan(sigmas[t - 1]);
        }
    }

    @Test
    void linearBetas() {
        NoiseSchedule linear = NoiseSchedule.create(BetaSchedule.LINEAR, 0.0001, 0.02, 1000);
        assertThat(linear.beta(0)).isEqualTo(0.0001);
        assertThat(linear.beta(1)).isCloseTo(0.0001 + 0.0199 / 999, within(1e-18));
        assertThat(linear.beta(999)).isEqualTo(0.02);
        assertThat(linear.alphaCumprod(1)).isCloseTo(0.9999 * (1 - 0.0001 - 0.0199 / 999), within(1e-15));
    }

    @Test
    void cosineBetasAreCapped() {
        NoiseSchedule cosine = NoiseSchedule.create(BetaSchedule.SQUAREDCOS_CAP_V2, 0.0001, 0.02, 1000);
        double f0 = Math.pow(Math.cos(0.008 / 1.008 * Math.PI / 2), 2);
        double f1 = Math.pow(Math.cos((0.001 + 0.008) / 1.008 * Math.PI / 2), 2);
        assertThat(cosine.beta(0)).isCloseTo(1 - f1 / f0, within(1e-15));
        // ᾱ(1) = cos²(π/2) ≈ 0 would make the last β equal 1.
        assertThat(cosine.beta(999)).isEqualTo(0.999);
        double[] betas = cosine.betas();
        for (double beta : betas) {
            assertThat(beta).isBetween(0.0, 0.999);
        }
    }

    @Test
    void arraysAreCopies() {
        SD.alphasCumprod()[0] = 0;
        SD.betas()[0] = 0;
        assertThat(SD.alphaCumprod(0)).isCloseTo(0.99915, within(1e-15));
        assertThat(SD.beta(0)).isCloseTo(0.00085, within(1e-15));
    }
}
