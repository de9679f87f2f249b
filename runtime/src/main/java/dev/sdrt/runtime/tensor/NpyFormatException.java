package dev.sdrt.runtime.tensor;

import java.io.IOException;
import java.nio.file.Path;

/** A {@code .npy} file that {@link Npy} cannot read; the message starts with the file's path. */
public final class NpyFormatException extends IOException {

    private final Path file;

    public NpyFormatException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public NpyFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
