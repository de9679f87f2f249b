package dev.sdrt.calibration;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The header of a scales file: how it was made, so a reader can tell whether it fits a model and
 * how to make it again.
 */
public final class ScalesHeader {
    private ScalesHeader() {
    }

    /**
     * The header fields, in a fixed order.
     *
     * @param createdAt written as the "created" date; pass a fixed instant for byte-identical files
     *     (the CLI honours {@code SOURCE_DATE_EPOCH}, the reproducible-builds convention)
     */
    public static Map<String, Object> of(Calibrator.Run run, List<Path> modelFiles, int prompts, String promptSource,
            Calibrator.Options options, CalibrationResult result, Instant createdAt) throws IOException {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("tool", "sdrt calibrate");
        h.put("sdrt_version", version());
        h.put("created", DateTimeFormatter.ISO_INSTANT.format(createdAt.truncatedTo(ChronoUnit.SECONDS)));
        h.put("model", run.unet().getFileName().toString());
        h.put("model_sha256", sha256(modelFiles));
        h.put("backend", run.backend());
        h.put("prompts", prompts);
        h.put("prompt_source", promptSource);
        h.put("steps", options.steps());
        h.put("scheduler", run.scheduler());
        h.put("guidance_scale", options.guidanceScale());
        h.put("width", run.width());
        h.put("height", run.height());
        h.put("seed", options.seed());
        h.put("method", result.method().spec());
        h.put("smoothquant_alpha", result.alpha());
        return h;
    }

    /** sdrt's version, from the build. */
    public static String version() {
        try (InputStream in = ScalesHeader.class.getResourceAsStream("version.properties")) {
            if (in == null) {
                return "unknown";
            }
            Properties p = new Properties();
            p.load(in);
            String v = p.getProperty("version", "unknown");
            return v.startsWith("${") ? "unknown" : v;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * SHA-256 over the bytes of {@code files} in order (a model file, then its external data files),
     * as lowercase hex.
     */
    public static String sha256(List<Path> files) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
        for (Path f : files) {
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                while (ch.read(buffer) >= 0) {
                    buffer.flip();
                    digest.update(buffer);
                    buffer.clear();
                }
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }
}
