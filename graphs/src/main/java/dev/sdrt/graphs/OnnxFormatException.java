package dev.sdrt.graphs;

import java.io.IOException;

/** An ONNX file that cannot be read as a valid model: malformed protobuf, bad external data, unsupported content. */
public class OnnxFormatException extends IOException {
    public OnnxFormatException(String message) {
        super(message);
    }

    public OnnxFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
