package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder;
import dev.sdrt.graphs.analysis.AttentionFinder.Attention;
import dev.sdrt.graphs.analysis.AttentionFinder.Kind;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code fuse-qkv}: the projections of one attention that read the same tensor become one MatMul
 * on concatenated weights, followed by a Split whose outputs take the old projections' places.
 *
 * <pre>
 *   self-attention                              cross-attention (k and v read the text c)
 *   x ─┬─ MatMul(Wq) [─ Add(bq)] ─▶ q           c ─┬─ MatMul(Wk) [─ Add(bk)] ─▶ k
 *      ├─ MatMul(Wk) [─ Add(bk)] ─▶ k              └─ MatMul(Wv) [─ Add(bv)] ─▶ v
 *      └─ MatMul(Wv) [─ Add(bv)] ─▶ v
 *   becomes
 *   x ── MatMul([Wq|Wk|Wv]) [─ Add([bq|bk|bv])] ── Split(axis=-1) ─▶ q, k, v
 * </pre>
 *
 * Weights are [C, C'] initializers; 2-D Gemm(x, W, b) projections (transA=0, alpha=beta=1, either
 * transB) fuse the same way into one Gemm. Joint attention (SD3's MMDiT) concatenates the q, k and
 * v of two streams: each stream's three projections fuse. Exact: each output column is the same
 * dot product as before. Attentions and their projections are found by {@link AttentionFinder}
 * (traced back from the scores and context MatMuls through reshapes, transposes, scaling, casts,
 * bias Adds, the Concat of joint attention and the Split of an earlier fusion).
 */
public final class FuseQkvPass implements GraphPass {
    @Override
    public String name() {
        return "fuse-qkv";
    }

    /** One projection: MatMul or Gemm with a constant weight, its bias, and the value it produces. */
    private record Projection(Node node, Node biasAdd, Value input, TensorData weight, TensorData bias, Value output,
            long width) {
        boolean transB() {
            return node.is("Gemm") && node.attrInt("transB", 0) != 0;
        }

        /** Reduction size: rows of W (columns when transposed). */
        long depth() {
            return weight.dims()[transB() ? 1 : 0];
        }
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        List<Attention> attentions = AttentionFinder.find(graph);
        Map<Kind, Integer> fusedByKind = new EnumMap<>(Kind.class);
        int alreadyFused = 0;
        for (Attention attention : attentions) {
            Map<Value, List<Projection>> bySource = new LinkedHashMap<>();
            for (Node node : projectionsOf(attention)) {
                Projection p = projection(node);
                if (p != null) {
                    bySource.computeIfAbsent(p.input(), k -> new ArrayList<>()).add(p);
                }
            }
            boolean fusedOne = false;
            boolean splitSeen = false;
            for (List<Projection> group : bySource.values()) {
                if (group.size() >= 2 && compatible(group)) {
                    fuse(graph, group, model.opset(), result);
                    fusedOne = true;
                } else if (group.size() == 1 && feedsSplit(group.get(0))) {
                    splitSeen = true;
                }
            }
            if (fusedOne) {
                fusedByKind.merge(attention.kind(), 1, Integer::sum);
            } else if (splitSeen) {
                alreadyFused++;
            }
        }
        int fused = fusedByKind.values().stream().mapToInt(Integer::intValue).sum();
        if (fused > 0) {
            graph.cleanup();
        }
        graph.toposort();
        result.matched(fused);
        result.note(String.format("fused %d of %d attentions (self %d, cross %d, joint %d); %d already fused", fused,
                attentions.size(), fusedByKind.getOrDefault(Kind.SELF, 0), fusedByKind.getOrDefault(Kind.CROSS, 0),
                fusedByKind.getOrDefault(Kind.JOINT, 0), alreadyFused));
        int left = attentions.size() - fused - alreadyFused;
        if (left > 0) {
            result.note(left + " attentions left as they are: no two projections (MatMul or Gemm with an initializer"
                    + " weight) read one tensor; weights from Constant nodes become initializers in cleanup");
        }
        return result.end(graph);
    }

    /** The projections the finder traced from q, k and v that this pass can fuse. */
    private static List<Node> projectionsOf(Attention attention) {
        return attention.projections().stream().filter(FuseQkvPass::isProjection).toList();
    }

    private static boolean isProjection(Node n) {
        Value w = n.input(1);
        boolean constantMatrix = w != null && w.isConstant() && w.constant().rank() == 2;
        return constantMatrix && (n.is("MatMul") || n.is("Gemm") && n.attrInt("transA", 0) == 0
                && n.attrFloat("alpha", 1f) == 1f && n.attrFloat("beta", 1f) == 1f);
    }

    /** The projection at {@code node} with its bias (an Add of a [C'] constant, or Gemm's C), or null. */
    private static Projection projection(Node node) {
        TensorData w = node.input(1).constant();
        boolean transB = node.is("Gemm") && node.attrInt("transB", 0) != 0;
        long width = w.dims()[transB ? 0 : 1];
        if (node.is("Gemm")) {
            Value c = node.input(2);
            if (c != null && !(c.isConstant() && isBiasOf(c.constant(), width, w.type()))) {
                return null;
            }
            return new Projection(node, null, node.input(0), w, c == null ? null : c.constant(), node.output(0), width);
        }
        Value mm = node.output(0);
        Node add = mm.soleConsumer();
        if (add != null && add.is("Add") && mm.consumers().size() == 1) {
            Value other = add.input(0) == mm ? add.input(1) : add.input(0);
            if (other.isConstant() && isBiasOf(other.constant(), width, w.type())) {
                return new Projection(node, add, node.input(0), w, other.constant(), add.output(0), width);
            }
        }
        return new Projection(node, null, node.input(0), w, null, mm, width);
    }

    private static boolean isBiasOf(TensorData b, long width, DataType type) {
        return b.rank() == 1 && b.dims()[0] == width && b.type() == type;
    }

    private static boolean compatible(List<Projection> group) {
        Projection first = group.get(0);
        for (Projection p : group) {
            if (!p.node().opType().equals(first.node().opType()) || p.transB() != first.transB()
                    || p.weight().type() != first.weight().type() || p.depth() != first.depth()) {
                return false;
            }
        }
        return true;
    }

    private static boolean feedsSplit(Projection p) {
        return p.output().consumerNodes().stream().anyMatch(c -> c.is("Split"));
    }

    private static void fuse(Graph graph, List<Projection> group, long opset, PassResult.Builder result) {
        Projection first = group.get(0);
        Node firstNode = first.node();
        String base = firstNode.name() + "_fused";
        DataType type = first.weight().type();
        long[] widths = group.stream().mapToLong(Projection::width).toArray();
        long total = group.stream().mapToLong(Projection::width).sum();
        boolean transB = first.transB();
        boolean anyBias = group.stream().anyMatch(p -> p.bias() != null);

        Shape shape = widened(first.input().shape(), total);
        Value weight = graph.constant(base + "_weight", concatWeights(group, transB, total));
        Value bias = anyBias ? graph.constant(base + "_bias", concatBiases(group, total)) : null;
        List<Node> added = new ArrayList<>();
        if (firstNode.is("Gemm")) {
            added.add(graph.addNode("Gemm", base, anyBias ? List.of(first.input(), weight, bias)
                    : List.of(first.input(), weight), 1).setAttr("transB", transB ? 1L : 0L));
        } else {
            added.add(graph.addNode("MatMul", base, List.of(first.input(), weight), 1));
            if (anyBias) {
                added.add(graph.addNode("Add", base + "_bias", List.of(added.get(0).output(0), bias), 1));
            }
        }
        added.forEach(n -> n.output(0).setTypeAndShape(type, shape));
        Value fused = added.get(added.size() - 1).output(0);

        List<Node> old = new ArrayList<>();
        List<Value> outputs = new ArrayList<>();
        for (Projection p : group) {
            old.add(p.node());
            if (p.biasAdd() != null) {
                old.add(p.biasAdd());
            }
            outputs.add(p.output());
        }
        // the Split below writes the old outputs, so the old nodes go now; their weights and
        // intermediates go in the graph's cleanup
        old.forEach(graph::removeNode);
        // the Split writes the old projections' output values, so their names and readers stay
        added.add(new OpEmitter(graph, opset, (node, values) -> graph.constant(base + "_split", TensorData.vector(values)))
                .split(base + "_split", fused, -1, widths, outputs));
        result.added(added.size()).removed(old.size()).affected(firstNode.name());
    }

    /** The input's shape with the last dimension replaced by {@code width}; null when unknown. */
    private static Shape widened(Shape input, long width) {
        if (input == null || input.rank() == 0) {
            return null;
        }
        List<Dim> dims = new ArrayList<>(input.dims());
        dims.set(dims.size() - 1, Dim.of(width));
        return Shape.of(dims);
    }

    /**
     * [C, N1] ++ [C, N2] ++ ... → [C, ΣN] (row by row), or for transposed Gemm weights
     * [N1, C] ++ [N2, C] → [ΣN, C] (one after another). Made when saved, so a large model's fused
     * weights never sit in memory all at once.
     */
    private static TensorData concatWeights(List<Projection> group, boolean transB, long total) {
        Projection first = group.get(0);
        DataType type = first.weight().type();
        long depth = first.depth();
        long[] dims = transB ? new long[] {total, depth} : new long[] {depth, total};
        int elem = type.byteSize();
        return TensorData.generated(type, dims, () -> {
            ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total * depth * elem)).order(ByteOrder.LITTLE_ENDIAN);
            if (transB) {
                group.forEach(p -> out.put(p.weight().bytes()));
            } else {
                List<ByteBuffer> sources = group.stream().map(p -> p.weight().bytes()).toList();
                for (long row = 0; row < depth; row++) {
                    for (int i = 0; i < group.size(); i++) {
                        int rowBytes = Math.toIntExact(group.get(i).width() * elem);
                        ByteBuffer src = sources.get(i);
                        out.put(src.slice(src.position(), rowBytes));
                        src.position(src.position() + rowBytes);
                    }
                }
            }
            return out.flip();
        });
    }

    /** [b1 | b2 | b3], zeros for a projection without bias (exact: x + 0 = x). */
    private static TensorData concatBiases(List<Projection> group, long total) {
        DataType type = group.get(0).weight().type();
        int elem = type.byteSize();
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total * elem)).order(ByteOrder.LITTLE_ENDIAN);
        for (Projection p : group) {
            if (p.bias() != null) {
                out.put(p.bias().bytes());
            } else {
                out.position(out.position() + Math.toIntExact(p.width() * elem));
            }
        }
        return TensorData.of(type, new long[] {total}, out.flip());
    }
}
