package dev.sdrt.graphs.passes;

/**
 * Where the destination and source tokens of one token-merging block sit on its h×w grid of
 * tokens (raster order, position {@code y * w + x}).
 *
 * <p>The grid is cut into {@code (h / sy) × (w / sx)} cells of sy×sx tokens; each cell holds one
 * destination, at in-cell offset {@code t = dy * sx + dx} given by the destination choice (0, the
 * top-left token, when not random). Rows and columns past the last whole cell hold only sources,
 * as in tomesd.
 *
 * <p>The <em>split order</em> lists the sources first, then the destinations: source j of cell c
 * (its in-cell offsets in increasing order, the destination's left out) is entry
 * {@code c * (sx*sy - 1) + j}; the tokens outside every cell follow in raster order; destination
 * c is entry {@code numSrc() + c}.
 */
record TokenMergingLayout(int h, int w, int sx, int sy) {

    TokenMergingLayout {
        if (h < 1 || w < 1 || sx < 1 || sy < 1) {
            throw new IllegalArgumentException("grid " + h + "×" + w + " with stride " + sx + "×" + sy);
        }
    }

    int tokens() {
        return h * w;
    }

    int cellsY() {
        return h / sy;
    }

    int cellsX() {
        return w / sx;
    }

    /** Number of cells, which is the number of destinations. */
    int cells() {
        return cellsY() * cellsX();
    }

    int cellSize() {
        return sx * sy;
    }

    int numDst() {
        return cells();
    }

    int numSrc() {
        return tokens() - cells();
    }

    /** Raster position of each cell's top-left token. */
    long[] cellBase() {
        long[] base = new long[cells()];
        for (int cy = 0; cy < cellsY(); cy++) {
            for (int cx = 0; cx < cellsX(); cx++) {
                base[cy * cellsX() + cx] = (long) cy * sy * w + (long) cx * sx;
            }
        }
        return base;
    }

    /** Raster offset of in-cell offset t from the cell's top-left token. */
    long[] cellOffsets() {
        long[] offsets = new long[cellSize()];
        for (int t = 0; t < cellSize(); t++) {
            offsets[t] = (long) (t / sx) * w + t % sx;
        }
        return offsets;
    }

    /** Raster positions of the tokens outside every whole cell, in raster order. */
    long[] leftoverPositions() {
        long[] out = new long[tokens() - cells() * cellSize()];
        int i = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (cellOf(y, x) < 0) {
                    out[i++] = (long) y * w + x;
                }
            }
        }
        return out;
    }

    /** The cell holding the token at (y, x), or -1 when it lies outside every whole cell. */
    int cellOf(int y, int x) {
        return y < cellsY() * sy && x < cellsX() * sx ? (y / sy) * cellsX() + x / sx : -1;
    }

    /** Per raster position: its cell, or 0 outside every cell. */
    long[] positionCell() {
        long[] out = new long[tokens()];
        for (int p = 0; p < tokens(); p++) {
            out[p] = Math.max(0, cellOf(p / w, p % w));
        }
        return out;
    }

    /**
     * Per raster position: its in-cell offset t, or -1 outside every cell (so that it never equals
     * nor exceeds a destination's offset).
     */
    long[] positionOffset() {
        long[] out = new long[tokens()];
        for (int p = 0; p < tokens(); p++) {
            int y = p / w;
            int x = p % w;
            out[p] = cellOf(y, x) < 0 ? -1 : (long) (y % sy) * sx + x % sx;
        }
        return out;
    }

    /**
     * Per raster position: its source index if its cell's destination were past it, i.e.
     * {@code cell * (sx*sy - 1) + t}; outside every cell, its source index.
     */
    long[] positionSrcBase() {
        long[] out = new long[tokens()];
        long[] offset = positionOffset();
        long[] cell = positionCell();
        for (int p = 0; p < tokens(); p++) {
            out[p] = cell[p] * (cellSize() - 1) + offset[p];
        }
        long next = (long) cells() * (cellSize() - 1);
        for (long p : leftoverPositions()) {
            out[(int) p] = next++;
        }
        return out;
    }

    // ---- the whole split for a known destination choice (one in-cell offset per cell) ----

    /** Raster positions of the sources in split order. */
    long[] srcPositions(long[] choice) {
        checkChoice(choice);
        long[] base = cellBase();
        long[] offsets = cellOffsets();
        long[] out = new long[numSrc()];
        int i = 0;
        for (int c = 0; c < cells(); c++) {
            for (int t = 0; t < cellSize(); t++) {
                if (t != choice[c]) {
                    out[i++] = base[c] + offsets[t];
                }
            }
        }
        for (long p : leftoverPositions()) {
            out[i++] = p;
        }
        return out;
    }

    /** Raster positions of the destinations, one per cell. */
    long[] dstPositions(long[] choice) {
        checkChoice(choice);
        long[] base = cellBase();
        long[] offsets = cellOffsets();
        long[] out = new long[cells()];
        for (int c = 0; c < cells(); c++) {
            out[c] = base[c] + offsets[(int) choice[c]];
        }
        return out;
    }

    /** Per raster position: its index in the source list, or 0 for a destination. */
    long[] srcIndexOfPosition(long[] choice) {
        long[] src = srcPositions(choice);
        long[] out = new long[tokens()];
        for (int i = 0; i < src.length; i++) {
            out[(int) src[i]] = i;
        }
        return out;
    }

    /** Per raster position: whether it holds a destination. */
    boolean[] isDstPosition(long[] choice) {
        boolean[] out = new boolean[tokens()];
        for (long p : dstPositions(choice)) {
            out[(int) p] = true;
        }
        return out;
    }

    /** The choice with every destination at the cell's top-left token. */
    long[] topLeftChoice() {
        return new long[cells()];
    }

    private void checkChoice(long[] choice) {
        if (choice.length != cells()) {
            throw new IllegalArgumentException("destination choice has " + choice.length + " entries for " + cells() + " cells");
        }
        for (long t : choice) {
            if (t < 0 || t >= cellSize()) {
                throw new IllegalArgumentException("destination offset " + t + " outside [0, " + cellSize() + ")");
            }
        }
    }
}
