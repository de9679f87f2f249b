package dev.sdrt.calibration;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.QdqPass;
import java.util.ArrayList;
import java.util.List;

/**
 * Which tensors calibration measures: exactly the activations the {@code qdq} pass quantizes
 * ({@link QdqPass#quantizableActivations}, before its skip list), so the taps and the pass agree.
 */
final class QuantTargets {
    private QuantTargets() {
    }

    /** The activations {@code qdq} would quantize: inputs of Conv, MatMul and Gemm with constant weights, graph order. */
    static List<Value> activations(Graph g) {
        return QdqPass.quantizableActivations(g);
    }

    /**
     * The activations SmoothQuant applies to: read by at least one MatMul with a constant weight,
     * by no Conv (the pass does not smooth a tensor that Convs and Linears share) and by no Gemm
     * with a transposed A (whose input channels are not on the last axis, where the taps measure).
     */
    static List<Value> smoothable(Graph g) {
        List<Value> out = new ArrayList<>();
        for (Value x : activations(g)) {
            List<Node> readers = readers(x);
            boolean matMul = readers.stream().anyMatch(n -> n.is("MatMul"));
            boolean blocked = readers.stream().anyMatch(n -> n.is("Conv") || n.is("Gemm") && n.attrInt("transA", 0) != 0);
            if (matMul && !blocked) {
                out.add(x);
            }
        }
        return out;
    }

    /** The ops that read {@code x} as their quantized input: Conv, MatMul or Gemm with a constant weight. */
    static List<Node> readers(Value x) {
        List<Node> out = new ArrayList<>();
        for (Node n : x.consumerNodes()) {
            if (n.input(0) != x || !n.domain().isEmpty() || !Constants.isConstant(n.input(1))) {
                continue;
            }
            int rank = Constants.data(n.input(1)).rank();
            if (n.is("Conv") && rank >= 3 || n.is("MatMul") && n.inputCount() == 2 && rank == 2 || n.is("Gemm") && rank == 2) {
                out.add(n);
            }
        }
        return out;
    }

    /**
     * The axis of a reader's weight that holds x's channels (the rows SmoothQuant scales): 0 for a
     * MatMul's [K, N], 1 for a Gemm's B when transB (B is [N, K]), else 0.
     */
    static int weightInputAxis(Node reader) {
        return reader.is("Gemm") && reader.attrInt("transB", 0) != 0 ? 1 : 0;
    }
}
