package dev.sdrt.runtime.trt;

/** Receives every message TensorRT logs through {@link TrtLogger}, on whatever thread TensorRT logs from. */
@FunctionalInterface
public interface TrtLogListener {
    void message(TrtSeverity severity, String text);
}
