package dev.sdrt.enginebuilder;

/**
 * The sizes one dimension may take in an engine: TensorRT optimizes for {@code opt} and accepts
 * anything from {@code min} to {@code max}.
 */
public record DimRange(long min, long opt, long max) {

    public DimRange {
        if (min < 1 || opt < min || max < opt) {
            throw new IllegalArgumentException("a dimension range needs 1 <= min <= opt <= max, got min "
                    + min + ", opt " + opt + ", max " + max);
        }
    }

    /** A single size: min = opt = max. */
    public static DimRange fixed(long size) {
        return new DimRange(size, size, size);
    }

    /**
     * Parses "N" (fixed), "MIN..MAX" (opt = MAX) or "MIN..OPT..MAX", the forms the command line takes,
     * e.g. {@code --batch 1..4}.
     */
    public static DimRange parse(String text) {
        String[] parts = text.trim().split("\\.\\.", -1);
        try {
            return switch (parts.length) {
                case 1 -> fixed(Long.parseLong(parts[0].trim()));
                case 2 -> new DimRange(Long.parseLong(parts[0].trim()), Long.parseLong(parts[1].trim()),
                        Long.parseLong(parts[1].trim()));
                case 3 -> new DimRange(Long.parseLong(parts[0].trim()), Long.parseLong(parts[1].trim()),
                        Long.parseLong(parts[2].trim()));
                default -> throw new IllegalArgumentException("bad range '" + text + "'");
            };
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad range '" + text + "': use N, MIN..MAX or MIN..OPT..MAX", e);
        }
    }

    public boolean isFixed() {
        return min == max;
    }

    /** This range collapsed to its opt value, for static-shape builds. */
    public DimRange atOpt() {
        return fixed(opt);
    }

    /** "2" or "1..2..4". */
    @Override
    public String toString() {
        return isFixed() ? Long.toString(min) : min + ".." + opt + ".." + max;
    }
}
