package dev.sdrt.exporter.weights;

/**
 * What a parameter is for, which decides how random initialisation fills it. A checkpoint ignores
 * it. {@code fanIn} is the number of inputs summed per output (for a matrix or kernel).
 */
public record Init(Kind kind, long fanIn) {
    public enum Kind {
        /** Matrix or kernel: uniform with variance 1/fanIn, so activations keep their scale. */
        WEIGHT,
        /** Additive bias: small values. */
        BIAS,
        /** Normalization gain: near 1. */
        NORM_SCALE,
        /** Normalization shift: small values. */
        NORM_BIAS,
        /** Token or position embedding table: unit-scale rows. */
        EMBEDDING
    }

    public static Init weight(long fanIn) {
        return new Init(Kind.WEIGHT, fanIn);
    }

    public static final Init BIAS = new Init(Kind.BIAS, 0);
    public static final Init NORM_SCALE = new Init(Kind.NORM_SCALE, 0);
    public static final Init NORM_BIAS = new Init(Kind.NORM_BIAS, 0);
    public static final Init EMBEDDING = new Init(Kind.EMBEDDING, 0);
}
