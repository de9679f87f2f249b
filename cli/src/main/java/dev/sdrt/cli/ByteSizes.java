package dev.sdrt.cli;

/** Byte counts as the commands print them: 512 B, 1.5 KiB, 3.2 GiB. */
final class ByteSizes {
    private ByteSizes() {
    }

    /** {@code bytes} in the largest binary unit that keeps the number at least 1, one decimal. */
    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format("%.1f %s", v, units[u]);
    }
}
