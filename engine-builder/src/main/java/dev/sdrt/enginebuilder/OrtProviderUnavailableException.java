package dev.sdrt.enginebuilder;

/** An ONNX Runtime execution provider was asked for that this ONNX Runtime build or machine lacks. */
public final class OrtProviderUnavailableException extends IllegalStateException {
    public OrtProviderUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
