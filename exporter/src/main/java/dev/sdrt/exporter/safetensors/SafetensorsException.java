package dev.sdrt.exporter.safetensors;

import java.io.IOException;

/** A safetensors file, shard index or weights folder that cannot be read as such; the message names the file. */
public class SafetensorsException extends IOException {
    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
