package dev.sdrt.runtime.trt;

import java.util.List;

/**
 * A TensorRT call failed. The message ends with the errors TensorRT logged just before, which usually
 * name the layer (and so the ONNX node) at fault.
 */
public class TrtException extends RuntimeException {

    private final List<String> tensorRtErrors;

    public TrtException(String message, List<String> tensorRtErrors) {
        super(message + describe(tensorRtErrors));
        this.tensorRtErrors = List.copyOf(tensorRtErrors);
    }

    /** The error messages TensorRT logged around the failure, oldest first. */
    public List<String> tensorRtErrors() {
        return tensorRtErrors;
    }

    private static String describe(List<String> errors) {
        if (errors.isEmpty()) {
            return "";
        }
        StringBuilder text = new StringBuilder("; TensorRT said:");
        for (String error : errors) {
            text.append("\n  ").append(error);
        }
        return text.toString();
    }
}
