package dev.sdrt.graphs;

import dev.sdrt.graphs.io.Messages;
import java.io.IOException;

/**
 * An ONNX file that cannot be read as a valid model (malformed protobuf, bad external data,
 * unsupported content), or a model that cannot be saved as one. Messages are capped at
 * {@link Messages#MAX_LENGTH} characters, whatever the input holds.
 */
public class OnnxFormatException extends IOException {
    public OnnxFormatException(String message) {
        super(Messages.cap(message, Messages.MAX_LENGTH));
    }

    public OnnxFormatException(String message, Throwable cause) {
        super(Messages.cap(message, Messages.MAX_LENGTH), cause);
    }
}
