package dev.sdrt.exporter.safetensors;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the reference fixtures: the {@code sdrt.fixtures} system property (set by surefire), else the
 * nearest {@code testdata} folder above the working directory (for runs from an IDE).
 */
public final class TestFixtures {
    private TestFixtures() {
    }

    public static Path root() {
        String property = System.getProperty("sdrt.fixtures");
        if (property != null && Files.isDirectory(Path.of(property))) {
            return Path.of(property).normalize();
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("testdata");
            if (Files.isDirectory(candidate.resolve("tiny_sd_unet"))) {
                return candidate;
            }
        }
        throw new IllegalStateException("fixtures not found: set -Dsdrt.fixtures or run below the repository"
                + " root, which holds testdata/ (property was " + property + ")");
    }

    /** One fixture model folder, e.g. "tiny_sd_unet". */
    public static Path folder(String name) {
        Path folder = root().resolve(name);
        if (!Files.isDirectory(folder)) {
            throw new IllegalStateException("no fixture folder " + folder);
        }
        return folder;
    }
}
