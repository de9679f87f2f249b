package dev.sdrt.runtime.io;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes files so that readers never see a half-written one: write to a temp file in the same
 * folder, then move it over the target. (Not Files.createTempFile: its owner-only permissions
 * would carry over to the final file.)
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Fills the temp file it is given. */
    @FunctionalInterface
    public interface Writer {
        void write(Path temp) throws IOException;
    }

    /** Writes {@code target} through {@code writer}; on failure the old target is untouched and no temp file stays. */
    public static void write(Path target, Writer writer) throws IOException {
        Path temp = tempBeside(target);
        try {
            writer.write(temp);
            replace(temp, target);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** A fresh, not yet existing path in the target's folder. */
    public static Path tempBeside(Path target) {
        Path abs = target.toAbsolutePath();
        return abs.resolveSibling("." + abs.getFileName() + "." + Integer.toHexString(ThreadLocalRandom.current().nextInt()) + ".tmp");
    }

    /** Moves {@code temp} over {@code target}, atomically where the file system allows. */
    public static void replace(Path temp, Path target) throws IOException {
        try {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
