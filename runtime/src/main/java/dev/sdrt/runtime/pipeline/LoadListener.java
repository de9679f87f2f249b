package dev.sdrt.runtime.pipeline;

import java.nio.file.Path;

/**
 * Hears about each model a pipeline opens. Opening a full-size pipeline's ONNX Runtime sessions (or
 * engines) takes seconds per model, so a caller can say what is loading while it waits.
 */
public interface LoadListener {
    LoadListener NONE = new LoadListener() {
    };

    /**
     * {@code component}, named as in {@code sdrt-pipeline.json} ("text_encoder", "unet",
     * "vae_decoder", ...), is about to be opened from {@code file}.
     */
    default void loading(String component, Path file) {
    }

    /** ... and is open, after {@code seconds}. */
    default void loaded(String component, Path file, double seconds) {
    }

    /** ... or failed to open; the pipeline's open then throws. */
    default void failed(String component, Path file) {
    }
}
