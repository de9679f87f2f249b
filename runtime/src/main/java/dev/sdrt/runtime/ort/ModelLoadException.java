package dev.sdrt.runtime.ort;

import java.nio.file.Path;

/** A model file that could not be opened or loaded; the message names the file and the reason. */
public final class ModelLoadException extends RuntimeException {

    private final Path model;

    public ModelLoadException(Path model, String reason, Throwable cause) {
        super("cannot load ONNX model " + model + ": " + reason, cause);
        this.model = model;
    }

    public Path model() {
        return model;
    }
}
