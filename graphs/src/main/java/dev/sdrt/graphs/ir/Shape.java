package dev.sdrt.graphs.ir;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** An immutable tensor shape whose dimensions may be fixed, symbolic or unknown. */
public final class Shape {
    private final List<Dim> dims;

    private Shape(List<Dim> dims) {
        this.dims = List.copyOf(dims);
    }

    public static Shape of(List<Dim> dims) {
        return new Shape(dims);
    }

    public static Shape of(long... dims) {
        List<Dim> list = new ArrayList<>(dims.length);
        for (long d : dims) {
            list.add(d < 0 ? Dim.UNKNOWN : Dim.of(d));
        }
        return new Shape(list);
    }

    /** Builds a shape from a mix of Long/Integer (fixed) and String (symbolic) entries. */
    public static Shape mixed(Object... dims) {
        List<Dim> list = new ArrayList<>(dims.length);
        for (Object d : dims) {
            if (d instanceof Number n) {
                list.add(n.longValue() < 0 ? Dim.UNKNOWN : Dim.of(n.longValue()));
            } else if (d instanceof String s) {
                list.add(Dim.symbolic(s));
            } else {
                throw new IllegalArgumentException("dimension must be a number or a name: " + d);
            }
        }
        return new Shape(list);
    }

    public int rank() {
        return dims.size();
    }

    public Dim dim(int i) {
        return dims.get(i < 0 ? dims.size() + i : i);
    }

    public List<Dim> dims() {
        return dims;
    }

    public boolean isFullyFixed() {
        return dims.stream().allMatch(Dim::isFixed);
    }

    /** Fixed sizes, with -1 for dimensions that are symbolic or unknown. */
    public long[] toArray() {
        return dims.stream().mapToLong(Dim::value).toArray();
    }

    public long numElements() {
        long n = 1;
        for (Dim d : dims) {
            if (!d.isFixed()) {
                return -1;
            }
            n = Math.multiplyExact(n, d.value());
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && s.dims.equals(dims);
    }

    @Override
    public int hashCode() {
        return dims.hashCode();
    }

    @Override
    public String toString() {
        return Arrays.toString(dims.toArray());
    }
}
