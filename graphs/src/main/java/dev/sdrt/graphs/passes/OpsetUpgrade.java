package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.TensorData;
import java.util.List;
import java.util.Set;

/** Raises a model's opset for the qdq pass (QuantizeLinear-19), rewriting the ops whose form opset 18 changed. */
final class OpsetUpgrade {
    private static final Set<String> REDUCE_AXES_FROM_18 = Set.of("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
            "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare");

    private OpsetUpgrade() {
    }

    /**
     * Raises the default-domain opset to {@code target}, rewriting what opset 18 changed for the
     * ops diffusion graphs use: Reduce ops' {@code axes} attribute becomes an input, and a Split
     * with neither split sizes nor num_outputs gets num_outputs (other opset 18/19 changes only add
     * optional attributes). The IR version becomes at least 9 for opset 19. Returns the number of
     * rewritten nodes.
     */
    static int upgrade(OnnxModel model, long target) {
        long from = model.opset();
        int rewritten = 0;
        Graph graph = model.graph();
        if (from < 18 && target >= 18) {
            for (Node n : List.copyOf(graph.nodes())) {
                if (!n.domain().isEmpty()) {
                    continue;
                }
                if (REDUCE_AXES_FROM_18.contains(n.opType()) && n.hasAttr("axes")) {
                    long[] axes = n.attrInts("axes");
                    n.removeAttr("axes");
                    n.truncateInputs(1);
                    n.setInput(1, graph.constant(n.name() + "_axes", TensorData.vector(axes)));
                    rewritten++;
                } else if (n.is("Split") && n.input(1) == null && !n.hasAttr("num_outputs")) {
                    n.setAttr("num_outputs", (long) n.outputs().size());
                    rewritten++;
                }
            }
        }
        String key = model.opsetImports().containsKey("") || !model.opsetImports().containsKey("ai.onnx") ? "" : "ai.onnx";
        model.opsetImports().put(key, target);
        if (target >= 19 && model.irVersion() < 9) {
            model.setIrVersion(9);
        }
        return rewritten;
    }
}
