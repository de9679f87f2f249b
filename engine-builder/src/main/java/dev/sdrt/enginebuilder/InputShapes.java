package dev.sdrt.enginebuilder;

import java.util.Arrays;

/** The min, opt and max shapes of one engine input in an optimization profile. */
public record InputShapes(long[] min, long[] opt, long[] max) {

    public InputShapes {
        min = min.clone();
        opt = opt.clone();
        max = max.clone();
        if (min.length != opt.length || opt.length != max.length) {
            throw new IllegalArgumentException("min, opt and max shapes differ in rank: "
                    + Arrays.toString(min) + " " + Arrays.toString(opt) + " " + Arrays.toString(max));
        }
    }

    @Override
    public long[] min() {
        return min.clone();
    }

    @Override
    public long[] opt() {
        return opt.clone();
    }

    @Override
    public long[] max() {
        return max.clone();
    }

    public boolean isStatic() {
        return Arrays.equals(min, max);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof InputShapes o
                && Arrays.equals(min, o.min) && Arrays.equals(opt, o.opt) && Arrays.equals(max, o.max);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(min) + Arrays.hashCode(opt)) + Arrays.hashCode(max);
    }

    /** "[2, 4, 64, 64]" when static, else "min [1, 4, 32, 32] opt [...] max [...]". */
    @Override
    public String toString() {
        return isStatic() ? Arrays.toString(opt)
                : "min " + Arrays.toString(min) + " opt " + Arrays.toString(opt) + " max " + Arrays.toString(max);
    }
}
