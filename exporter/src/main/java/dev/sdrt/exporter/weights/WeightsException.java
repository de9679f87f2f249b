package dev.sdrt.exporter.weights;

/** A parameter the graph needs is missing from the checkpoint or has the wrong shape. */
public class WeightsException extends RuntimeException {
    public WeightsException(String message) {
        super(message);
    }
}
