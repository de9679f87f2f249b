package dev.sdrt.cli.bench;

import dev.sdrt.cli.ImageSize;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What one {@code sdrt bench} run measures.
 *
 * @param source      what the baseline pipeline came from ("--arch tiny (random weights, seed 0)" or a folder)
 * @param model       the baseline pipeline folder
 * @param variants    the variants, in the order the user gave them
 * @param baseline    the variant every other is compared with
 * @param sizes       image sizes (width × height)
 * @param batches     images per request
 * @param threads     ONNX Runtime intra-op threads (0: all cores)
 * @param backend     where the pipelines run: cpu, cpu-loop or tensorrt ({@link BenchBackend#id()})
 * @param out         where bench.md, bench.json, bench.png and the variant folders go
 * @param rebuild     rebuild variant folders even when their manifest matches
 * @param scales      calibration scales for int8/fp8 (may be null)
 * @param commandLine the command line, for the report
 */
public record BenchSettings(String source, Path model, List<Variant> variants, String baseline, List<Size> sizes,
        List<Integer> batches, int steps, int runs, int warmup, long seed, String prompt, double guidance, String scheduler,
        int threads, String backend, Path out, boolean rebuild, Path scales, String commandLine) {

    public record Size(int width, int height) {
        @Override
        public String toString() {
            return width + "x" + height;
        }
    }

    /** Parses "512,768x512,1024": a number is a square size, WxH a rectangle. */
    public static List<Size> parseSizes(String list) {
        List<Size> sizes = new ArrayList<>();
        for (String s : list.split(",")) {
            String t = s.trim();
            if (t.isEmpty()) {
                continue;
            }
            // A bare number is a square size; WxH is read as every command reads it.
            String wxh = t.toLowerCase(Locale.ROOT).contains("x") ? t : t + "x" + t;
            ImageSize parsed;
            try {
                parsed = ImageSize.parse(wxh, "--sizes", 1);
            } catch (IllegalArgumentException e) {
                // Bench's own message: it also names the square form, which generate's --size does not take.
                throw new IllegalArgumentException("--sizes: '" + t + "' is not a size (use 512 or 768x512)");
            }
            Size size = new Size(parsed.width(), parsed.height());
            if (!sizes.contains(size)) {
                sizes.add(size);
            }
        }
        if (sizes.isEmpty()) {
            throw new IllegalArgumentException("--sizes names no size");
        }
        return sizes;
    }

    /** Parses "1,2,4". */
    public static List<Integer> parseBatches(String list) {
        List<Integer> batches = new ArrayList<>();
        for (String s : list.split(",")) {
            String t = s.trim();
            if (t.isEmpty()) {
                continue;
            }
            int b;
            try {
                b = Integer.parseInt(t);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--batch: '" + t + "' is not a number");
            }
            if (b < 1 || b > 64) {
                throw new IllegalArgumentException("--batch: each batch size must be between 1 and 64, got " + b);
            }
            if (!batches.contains(b)) {
                batches.add(b);
            }
        }
        if (batches.isEmpty()) {
            throw new IllegalArgumentException("--batch names no batch size");
        }
        return batches;
    }
}
