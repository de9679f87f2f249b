package dev.sdrt.runtime.trt;

/**
 * Severity of a TensorRT log message, most severe first (the order of {@code ILogger::Severity}).
 * A plain Java enum, so code that handles log messages can be tested without TensorRT's libraries.
 */
public enum TrtSeverity {
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE;

    /** True when this is at least as severe as {@code other}. */
    public boolean atLeast(TrtSeverity other) {
        return ordinal() <= other.ordinal();
    }
}
