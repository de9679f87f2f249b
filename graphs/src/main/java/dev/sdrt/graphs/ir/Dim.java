package dev.sdrt.graphs.ir;

/**
 * One dimension of a tensor shape: a fixed size, a named symbolic size ("batch"), or unknown.
 */
public record Dim(long value, String param) {

    public static final Dim UNKNOWN = new Dim(-1, null);

    public static Dim of(long value) {
        if (value < 0) {
            throw new IllegalArgumentException("negative dimension " + value);
        }
        return new Dim(value, null);
    }

    public static Dim symbolic(String param) {
        return new Dim(-1, param);
    }

    public boolean isFixed() {
        return value >= 0;
    }

    @Override
    public String toString() {
        return isFixed() ? Long.toString(value) : (param != null ? param : "?");
    }
}
