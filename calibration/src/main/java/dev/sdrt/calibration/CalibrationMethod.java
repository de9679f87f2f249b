package dev.sdrt.calibration;

import java.util.Arrays;
import java.util.Locale;

/**
 * How the per-step absolute maxima of one tensor, observed over {@code samples × steps} UNet calls
 * (samples are usually prompts), become the single amax its Q/DQ scale is made from
 * ({@code scale = amax / 127} for int8).
 *
 * <p>Input to {@link #combine}: {@code amax[s][t]} = max|x| of the tensor in sample {@code s} at
 * denoising step {@code t}. Every method returns a value no larger than the overall maximum, so a
 * method only ever clips more than {@link Max} does, never less.
 */
public sealed interface CalibrationMethod {

    /** The method's spec as the CLI writes it: {@code max}, {@code percentile:99.9}, {@code mean-min}. */
    String spec();

    /** Combines {@code amax[sample][step]} (every row the same length, at least one value) into one amax. */
    float combine(float[][] amax);

    /**
     * Parses {@code max}, {@code percentile:P} (0 &lt; P ≤ 100) or {@code mean-min}.
     *
     * @throws IllegalArgumentException naming the accepted methods
     */
    static CalibrationMethod parse(String spec) {
        String s = spec == null ? "" : spec.trim().toLowerCase(Locale.ROOT);
        if (s.equals("max")) {
            return new Max();
        }
        if (s.equals("mean-min") || s.equals("min-mean")) {
            return new MeanMin();
        }
        if (s.startsWith("percentile:") || s.equals("percentile")) {
            String p = s.equals("percentile") ? "" : s.substring("percentile:".length());
            double value;
            try {
                value = Double.parseDouble(p);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("method '" + spec + "': percentile needs a number, e.g. percentile:99.9");
            }
            return new Percentile(value);
        }
        throw new IllegalArgumentException("unknown calibration method '" + spec
                + "'; methods are max, percentile:P (e.g. percentile:99.9) and mean-min");
    }

    /** {@code amax = max over s, t of amax[s][t]}: nothing observed is ever clipped. */
    record Max() implements CalibrationMethod {
        @Override
        public String spec() {
            return "max";
        }

        @Override
        public float combine(float[][] amax) {
            float m = 0;
            for (float[] row : amax) {
                for (float v : row) {
                    m = Math.max(m, v);
                }
            }
            return m;
        }
    }

    /**
     * {@code amax = the P-th percentile of the S·T values amax[s][t]}, by linear interpolation between
     * the two nearest ranks of the sorted values (numpy's default): with sorted values {@code v} and
     * {@code r = P/100 · (S·T − 1)}, {@code amax = v[⌊r⌋] + (r − ⌊r⌋)·(v[⌈r⌉] − v[⌊r⌋])}. This drops
     * the rare step whose range is far wider than the rest; P = 100 is {@link Max}.
     */
    record Percentile(double percent) implements CalibrationMethod {
        public Percentile {
            if (!(percent > 0 && percent <= 100)) {
                throw new IllegalArgumentException("percentile must be in (0, 100], got " + percent);
            }
        }

        @Override
        public String spec() {
            return "percentile:" + (percent == Math.rint(percent) ? Long.toString((long) percent) : Double.toString(percent));
        }

        @Override
        public float combine(float[][] amax) {
            int count = 0;
            for (float[] row : amax) {
                count += row.length;
            }
            float[] all = new float[count];
            int k = 0;
            for (float[] row : amax) {
                System.arraycopy(row, 0, all, k, row.length);
                k += row.length;
            }
            Arrays.sort(all);
            double rank = percent / 100.0 * (all.length - 1);
            int lo = (int) Math.floor(rank);
            int hi = (int) Math.ceil(rank);
            double value = all[lo] + (rank - lo) * ((double) all[hi] - all[lo]);
            return (float) Math.min(value, all[all.length - 1]);
        }
    }

    /**
     * The per-step min-of-mean rule used for diffusion models (the "min-mean" collection of NVIDIA's
     * TensorRT Model Optimizer diffusers int8 recipe, in the spirit of Q-Diffusion's observation that
     * activation ranges drift across timesteps):
     *
     * <pre>
     *   m[t]  = (1/S) · Σ_s amax[s][t]      mean over samples (prompts) at step t
     *   amax  = min over t of m[t]
     * </pre>
     *
     * The mean over prompts removes per-prompt outliers; the minimum over steps picks the step with
     * the tightest typical range, deliberately clipping the wide ranges of the other steps (mostly
     * the first, noisiest ones) in exchange for finer resolution where most values lie. It usually
     * clips the most of the three methods and is meant for int8 with SmoothQuant; check its
     * fidelity. (Model Optimizer divides the per-step sums by the number of steps rather than of
     * samples and may restrict t to a leading fraction of steps; sdrt takes the plain mean over
     * samples and every step.)
     */
    record MeanMin() implements CalibrationMethod {
        @Override
        public String spec() {
            return "mean-min";
        }

        @Override
        public float combine(float[][] amax) {
            int steps = amax[0].length;
            double best = Double.POSITIVE_INFINITY;
            for (int t = 0; t < steps; t++) {
                double sum = 0;
                for (float[] row : amax) {
                    sum += row[t];
                }
                best = Math.min(best, sum / amax.length);
            }
            return (float) best;
        }
    }
}
