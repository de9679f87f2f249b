package dev.sdrt.enginebuilder;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds the ONNX node a TensorRT build error is about. TensorRT names layers after the ONNX nodes the
 * parser made them from (a layer may add a suffix, e.g. "/conv/Conv_output_0"), and its error messages
 * quote layer names, so the longest node name that appears in the messages is the culprit.
 */
public final class FailureLocator {

    /** A located node: its name and op type. */
    public record Location(String nodeName, String opType) {
        @Override
        public String toString() {
            return "ONNX node '" + nodeName + "' (" + opType + ")";
        }
    }

    private FailureLocator() {}

    /** The node named in {@code messages}, longest name first; empty when none is. */
    public static Optional<Location> locate(List<String> messages, Map<String, String> nodeOps) {
        String best = null;
        for (String node : nodeOps.keySet()) {
            if (node.length() < 2 || (best != null && node.length() <= best.length())) {
                continue;
            }
            for (String message : messages) {
                if (message.contains(node)) {
                    best = node;
                    break;
                }
            }
        }
        return best == null ? Optional.empty() : Optional.of(new Location(best, nodeOps.get(best)));
    }
}
