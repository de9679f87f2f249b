package dev.sdrt.calibration;

import dev.sdrt.graphs.passes.Scales;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Makes the scales file that {@code sdrt optimize --passes qdq --scales FILE} reads ({@link Scales}
 * of the graphs module writes and reads it):
 *
 * <pre>
 * {
 *   "format": "sdrt-scales-1",
 *   "header": { how it was made },
 *   "amax": { tensor name: amax, ... },
 *   "smoothquant": { "alpha": α, "factors": { tensor: [s_0, ...] }, "amax": { tensor: amax of tensor / s } }
 * }
 * </pre>
 *
 * Output is deterministic: keys in graph order, floats in Java's round-trip form, so the same
 * statistics and header give the same bytes.
 */
public final class ScalesFile {
    public static final String FORMAT = Scales.FORMAT;

    private ScalesFile() {
    }

    /**
     * Combines a calibration run with {@code method} (and SmoothQuant when {@code alpha} is not
     * null) and returns the file's text, header included.
     */
    public static String toJson(Calibrator.Run run, int prompts, String promptSource, Calibrator.Options options,
            CalibrationMethod method, Double alpha, Instant createdAt) throws IOException {
        CalibrationResult result = CalibrationResult.compute(run.statistics(), run.model().graph(), method, alpha);
        List<Path> files = new ArrayList<>();
        files.add(run.unet());
        files.addAll(run.model().externalDataFiles());
        return toJson(result, ScalesHeader.of(run, files, prompts, promptSource, options, result, createdAt));
    }

    /** The scales file for {@code result}, as the graphs module's {@link Scales} writes it. */
    public static String toJson(CalibrationResult result, Map<String, Object> header) {
        return toScales(result, header).toJson();
    }

    /**
     * {@code result} as {@link Scales}: every amax, and SmoothQuant factors with the amax of each
     * smoothed activation when SmoothQuant was on.
     *
     * @throws IllegalStateException when a value is not finite (the model overflowed on the calibration inputs)
     */
    public static Scales toScales(CalibrationResult result, Map<String, Object> header) {
        result.amax().forEach(ScalesFile::finite);
        result.smoothedAmax().forEach(ScalesFile::finite);
        result.smoothing().forEach((k, f) -> {
            for (float v : f) {
                finite(k, v);
            }
        });
        Scales.SmoothQuant sq = result.alpha() == null || result.smoothing().isEmpty() ? null
                : new Scales.SmoothQuant(result.alpha(), result.smoothing(), result.smoothedAmax());
        return new Scales(header, result.amax(), sq);
    }

    /** Writes {@code json} atomically (temp file beside the target, then move). */
    public static void write(Path file, String json) throws IOException {
        Path target = file.toAbsolutePath();
        Files.createDirectories(target.getParent());
        Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp");
        try {
            Files.writeString(tmp, json, StandardCharsets.UTF_8);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void finite(String tensor, float v) {
        if (!Float.isFinite(v)) {
            throw new IllegalStateException("tensor " + tensor + " has a non-finite calibration value " + v
                    + "; the model overflows on the calibration inputs");
        }
    }
}
