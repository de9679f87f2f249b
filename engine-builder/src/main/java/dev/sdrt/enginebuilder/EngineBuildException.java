package dev.sdrt.enginebuilder;

import java.util.List;

/**
 * TensorRT could not parse the ONNX model or build the engine. The message names the failing ONNX
 * node and its op when they can be told (from the parser's error, or from the layer named in
 * TensorRT's error log), and ends with what TensorRT said.
 */
public final class EngineBuildException extends RuntimeException {

    private final String nodeName;
    private final String opType;
    private final List<String> tensorRtErrors;

    public EngineBuildException(String message, String nodeName, String opType, List<String> tensorRtErrors) {
        super(message);
        this.nodeName = nodeName;
        this.opType = opType;
        this.tensorRtErrors = List.copyOf(tensorRtErrors);
    }

    /** The ONNX node at fault, or null when it could not be told. */
    public String nodeName() {
        return nodeName;
    }

    /** That node's op type, or null. */
    public String opType() {
        return opType;
    }

    public List<String> tensorRtErrors() {
        return tensorRtErrors;
    }
}
