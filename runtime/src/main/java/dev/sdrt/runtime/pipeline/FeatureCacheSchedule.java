package dev.sdrt.runtime.pipeline;

import java.util.Arrays;
import java.util.BitSet;
import java.util.TreeSet;

/**
 * Which denoising steps run the full UNet (refreshing DeepCache's cached feature) and which run the
 * shallow one, decided on the host before the loop, so that the loop itself never asks the device.
 *
 * <p>Every schedule has step 0 full (the shallow graph needs a feature to start from), lists its full
 * steps strictly increasing within {@code [0, steps)}, and with interval 1 runs every step full. An
 * interval of N gives {@code ceil(steps / N)} full steps; the uniform and non-uniform schedules
 * differ only in where they fall.
 *
 * <p>Immutable and thread-safe.
 */
public final class FeatureCacheSchedule {
    /** DeepCache's non-uniform centre: step 15 of 50, where its reference pipelines place it. */
    public static final double DEFAULT_CENTRE = 0.3;
    /** DeepCache's non-uniform power for 1:N caching (its reference pipelines use 1.4). */
    public static final double DEFAULT_POWER = 1.4;
    /** How much the power drops per retry when a power makes two full steps coincide. */
    private static final double POWER_STEP = 0.02;

    private final int steps;
    private final int interval;
    private final int[] fullSteps;
    private final BitSet full;
    private final String kind;

    private FeatureCacheSchedule(int steps, int interval, int[] fullSteps, String kind) {
        this.steps = steps;
        this.interval = interval;
        this.fullSteps = fullSteps;
        this.full = new BitSet(steps);
        for (int s : fullSteps) {
            full.set(s);
        }
        this.kind = kind;
    }

    /** Full at steps 0, N, 2N, …: {@code ceil(steps / interval)} full steps. */
    public static FeatureCacheSchedule uniform(int steps, int interval) {
        check(steps, interval);
        int[] full = new int[(steps + interval - 1) / interval];
        for (int i = 0; i < full.length; i++) {
            full[i] = i * interval;
        }
        return new FeatureCacheSchedule(steps, interval, full, "uniform 1:" + interval);
    }

    /** {@link #nonUniform(int, int, double, double)} with DeepCache's centre 0.3 and power 1.4. */
    public static FeatureCacheSchedule nonUniform(int steps, int interval) {
        return nonUniform(steps, interval, DEFAULT_CENTRE, DEFAULT_POWER);
    }

    /**
     * DeepCache's non-uniform 1:N schedule: the same number of full steps as {@link #uniform}, {@code
     * n = ceil(T / N)} for {@code T} steps, placed densely around a centre step {@code c} and sparsely
     * towards both ends, where the deep feature changes fastest per step in the middle of sampling.
     * With {@code c = round(centre · T)} (clamped to {@code [0, T-1]}) and power {@code p}:
     *
     * <pre>
     *   u_i = -c^(1/p) + (i / n) · ((T - c)^(1/p) + c^(1/p))          i = 0 … n   (evenly spaced)
     *   s_i = c + trunc(sign(u_i) · |u_i|^p)                                      (spread by the power)
     *   full = {0} ∪ (the distinct s_i without their smallest and largest value, 0 and T)
     * </pre>
     *
     * Spacing grows like {@code |s - c|^(1 - 1/p)} away from the centre. If truncation makes two
     * steps coincide (fewer than {@code n} distinct), {@code p} drops by 0.02 and the formula runs
     * again; at {@code p = 1} the points are evenly spaced (at least one step apart, since {@code T /
     * n ≥ 1}), so the schedule always has exactly {@code n} full steps. This is the {@code
     * sample_from_quad_center} of DeepCache's reference code (Ma et al. 2023), with the signed power
     * it intends written out for the part left of the centre.
     *
     * @param centre where the full steps crowd, as a fraction of the steps in {@code [0, 1]}
     * @param power spread, at least 1 (1 is uniform spacing; DeepCache uses 1.4)
     */
    public static FeatureCacheSchedule nonUniform(int steps, int interval, double centre, double power) {
        check(steps, interval);
        if (!(centre >= 0 && centre <= 1)) {
            throw new IllegalArgumentException("centre is a fraction of the steps in [0, 1], got " + centre);
        }
        if (!(power >= 1) || Double.isInfinite(power)) {
            throw new IllegalArgumentException("power must be a finite number of at least 1, got " + power);
        }
        int n = (steps + interval - 1) / interval;
        int c = (int) Math.min(Math.max(Math.round(centre * steps), 0), steps - 1);
        String kind = String.format("non-uniform 1:%d (centre %d, power %s)", interval, c, power);
        if (interval == 1) {
            return new FeatureCacheSchedule(steps, interval, uniform(steps, 1).fullSteps, kind);
        }
        for (double p = power; ; p = Math.max(1, p - POWER_STEP)) {
            int[] full = quadCentred(steps, n, c, p);
            if (full.length == n) {
                return new FeatureCacheSchedule(steps, interval, full,
                        p == power ? kind : kind + " → power " + String.format("%.2f", p));
            }
            if (p == 1) {
                // not reached: at p = 1 the points are at least one step apart
                return new FeatureCacheSchedule(steps, interval, uniform(steps, interval).fullSteps, kind + " → uniform");
            }
        }
    }

    private static int[] quadCentred(int steps, int n, int c, double p) {
        double a = -Math.pow(c, 1 / p);
        double b = Math.pow(steps - c, 1 / p);
        TreeSet<Integer> points = new TreeSet<>();
        for (int i = 0; i <= n; i++) {
            double u = a + (b - a) * i / n;
            points.add(c + (int) (Math.signum(u) * Math.pow(Math.abs(u), p)));
        }
        points.pollFirst();
        points.pollLast();
        points.add(0);
        points.removeIf(s -> s < 0 || s >= steps);
        return points.stream().mapToInt(Integer::intValue).toArray();
    }

    private static void check(int steps, int interval) {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be at least 1, got " + steps);
        }
        if (interval < 1) {
            throw new IllegalArgumentException("the cache interval must be at least 1 (1 = no caching), got " + interval);
        }
    }

    public int steps() {
        return steps;
    }

    /** The N of 1:N caching this schedule was made for. */
    public int interval() {
        return interval;
    }

    /** True when {@code step} runs the full UNet. */
    public boolean isFull(int step) {
        if (step < 0 || step >= steps) {
            throw new IllegalArgumentException("step " + step + " is outside this " + steps + "-step schedule");
        }
        return full.get(step);
    }

    /** Number of full steps. */
    public int fullCount() {
        return fullSteps.length;
    }

    /** Number of shallow steps. */
    public int shallowCount() {
        return steps - fullSteps.length;
    }

    /** The full steps, increasing (a copy). */
    public int[] fullSteps() {
        return fullSteps.clone();
    }

    /** "uniform 1:3" or "non-uniform 1:3 (centre 15, power 1.4)", with the power actually used if it dropped. */
    public String description() {
        return kind;
    }

    /** One letter per step, "F" full and "s" shallow: "F s s F s s F". */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(2 * steps);
        for (int i = 0; i < steps; i++) {
            sb.append(i == 0 ? "" : " ").append(full.get(i) ? 'F' : 's');
        }
        return sb.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FeatureCacheSchedule s && s.steps == steps && Arrays.equals(s.fullSteps, fullSteps);
    }

    @Override
    public int hashCode() {
        return 31 * steps + Arrays.hashCode(fullSteps);
    }
}
