package dev.sdrt.runtime.tensor;

import java.util.Arrays;

/** Comparisons between tensors, for tests, fidelity reports and benchmarks. */
public final class Tensors {

    private Tensors() {}

    /**
     * max|a − b| / max|b|: the largest error of {@code a} relative to the largest magnitude of the
     * reference {@code b}. The fixtures' agreement bound (1e-4 in float32) is stated in this
     * measure. The dtypes may differ (a float16 engine output against a float32 reference); both are
     * compared as float32, in double arithmetic.
     *
     * @return 0 when both are identical (including both all zero), +Infinity when {@code b} is all
     *     zero and {@code a} is not, NaN when either holds a NaN
     * @throws IllegalArgumentException when the shapes differ or either tensor is not floating point
     */
    public static double maxRelDiff(Tensor a, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException("cannot compare tensors of different shapes: " + a + " vs " + b);
        }
        if (!a.dtype().isFloatingPoint() || !b.dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("maxRelDiff compares floating-point tensors, got " + a + " vs " + b);
        }
        float[] actual = a.toFloatArray();
        float[] reference = b.toFloatArray();
        double maxAbsDiff = 0;
        double maxAbsReference = 0;
        for (int i = 0; i < actual.length; i++) {
            // Equal values (infinities included) differ by 0; Math.max propagates NaN, so one NaN
            // anywhere makes the result NaN.
            double diff = actual[i] == reference[i] ? 0 : Math.abs((double) actual[i] - reference[i]);
            maxAbsDiff = Math.max(maxAbsDiff, diff);
            maxAbsReference = Math.max(maxAbsReference, Math.abs((double) reference[i]));
        }
        if (maxAbsDiff == 0) {
            return 0;
        }
        return maxAbsDiff / maxAbsReference;
    }

    /**
     * Cosine similarity of two equally long vectors, in double: 1 for the same direction. Two all-zero
     * vectors count as identical (1), one all-zero vector against a non-zero one as unrelated (0).
     */
    public static double cosine(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("cannot compare arrays of different lengths: " + a.length + " and " + b.length);
        }
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        if (na == 0 && nb == 0) {
            return 1;
        }
        if (na == 0 || nb == 0) {
            return 0;
        }
        return dot / (Math.sqrt(na) * Math.sqrt(nb));
    }
}
