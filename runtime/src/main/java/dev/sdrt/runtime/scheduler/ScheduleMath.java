package dev.sdrt.runtime.scheduler;

/** Numeric helpers shared by the schedules, written to give the same values as their numpy forms. */
final class ScheduleMath {

    /** Karras et al. 2022 (EDM), eq. 5: the ρ that spreads steps well over log σ for images. */
    static final double KARRAS_RHO = 7.0;

    private ScheduleMath() {
    }

    /** {@code count} evenly spaced values from start to stop inclusive: start + i·step, last = stop. */
    static double[] linspace(double start, double stop, int count) {
        double[] values = new double[count];
        if (count == 1) {
            values[0] = start;
            return values;
        }
        double step = (stop - start) / (count - 1);
        for (int i = 0; i < count; i++) {
            values[i] = start + i * step;
        }
        values[count - 1] = stop;
        return values;
    }

    /**
     * Piecewise-linear interpolation of {@code table} (sampled at 0, 1, ..., n−1) at position x,
     * clamped to the ends.
     */
    static double interpolate(double x, double[] table) {
        if (x <= 0) {
            return table[0];
        }
        int last = table.length - 1;
        if (x >= last) {
            return table[last];
        }
        int low = (int) Math.floor(x);
        return table[low] + (table[low + 1] - table[low]) * (x - low);
    }

    /**
     * Karras et al. 2022 (EDM), eq. 5: σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ
     * for i = 0..N−1, descending from σ_max to σ_min.
     */
    static double[] karrasSigmas(double sigmaMax, double sigmaMin, int count) {
        double maxRoot = Math.pow(sigmaMax, 1 / KARRAS_RHO);
        double minRoot = Math.pow(sigmaMin, 1 / KARRAS_RHO);
        double[] ramp = linspace(0, 1, count);
        double[] sigmas = new double[count];
        for (int i = 0; i < count; i++) {
            sigmas[i] = Math.pow(maxRoot + ramp[i] * (minRoot - maxRoot), KARRAS_RHO);
        }
        return sigmas;
    }

    /** Natural logarithm of each value. */
    static double[] logOf(double[] values) {
        double[] logs = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            logs[i] = Math.log(values[i]);
        }
        return logs;
    }

    /**
     * The fractional training timestep whose σ is {@code sigma}: linear interpolation in log σ
     * between the two neighbouring training timesteps, clamped to 0..T−1. {@code logSigmas[t]} is
     * log σ_t and increases with t.
     */
    static double timestepForSigma(double sigma, double[] logSigmas) {
        double logSigma = Math.log(Math.max(sigma, 1e-10));
        int low = 0;
        for (int t = 0; t < logSigmas.length; t++) {
            if (logSigmas[t] <= logSigma) {
                low = t;
            }
        }
        low = Math.min(low, logSigmas.length - 2);
        double weight = (logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]);
        weight = Math.min(Math.max(weight, 0), 1);
        return (1 - weight) * low + weight * (low + 1);
    }
}
