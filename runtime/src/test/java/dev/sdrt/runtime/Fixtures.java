package dev.sdrt.runtime;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.stream.Stream;

/**
 * Finds the reference fixtures (tiny diffusers models with reference inputs and outputs; see
 * testdata/README.md at the repository root). Surefire passes their location as the system property
 * {@code sdrt.fixtures}; when a test runs without it (from an IDE), the directories above the working
 * directory are searched for {@code testdata}.
 */
public final class Fixtures {

    public static final String PROPERTY = "sdrt.fixtures";

    private static Path directory;

    private Fixtures() {}

    /** The fixtures directory; fails the test with a hint when it cannot be found. */
    public static synchronized Path dir() {
        if (directory == null) {
            directory = locate();
        }
        return directory;
    }

    /** One model's folder, e.g. {@code model("tiny_sd_unet")}. */
    public static Path model(String name) {
        Path folder = dir().resolve(name);
        if (!Files.isDirectory(folder)) {
            throw new IllegalStateException("no fixture folder " + folder);
        }
        return folder;
    }

    /** Every model folder (each holds a model.onnx), sorted by name. */
    public static List<Path> modelFolders() {
        try (Stream<Path> entries = Files.list(dir())) {
            return entries.filter(folder -> Files.isRegularFile(folder.resolve("model.onnx"))).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path locate() {
        String configured = System.getProperty(PROPERTY);
        if (configured != null && Files.isDirectory(Paths.get(configured))) {
            return Paths.get(configured).toAbsolutePath().normalize();
        }
        for (Path dir = Paths.get("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("testdata");
            if (Files.isDirectory(candidate.resolve("tiny_sd_unet"))) {
                return candidate.normalize();
            }
        }
        throw new IllegalStateException("cannot find the fixtures: system property " + PROPERTY + " is "
                + (configured == null ? "unset" : "'" + configured + "', not a directory")
                + ", and no testdata folder lies above " + Paths.get("").toAbsolutePath());
    }
}
