package dev.sdrt.graphs.passes;

import static dev.sdrt.graphs.passes.Layouts.NCHW;
import static dev.sdrt.graphs.passes.Layouts.NHWC;
import static dev.sdrt.graphs.passes.Layouts.TO_NCHW;
import static dev.sdrt.graphs.passes.Layouts.TO_NHWC;
import static dev.sdrt.graphs.passes.Layouts.isAct4d;
import static dev.sdrt.graphs.passes.Layouts.isFloat4d;
import static dev.sdrt.graphs.passes.Layouts.isOne;
import static dev.sdrt.graphs.passes.Layouts.isPerm;
import static dev.sdrt.graphs.passes.Layouts.isPlainShape;
import static dev.sdrt.graphs.passes.Layouts.perm;
import static dev.sdrt.graphs.passes.Layouts.permute;

import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Materialisation of layouts for channels-last: after units switched to NHWC, each logical tensor
 * gets one value per layout its readers need (the producer's, and at most one Transpose, Reshape
 * adapter or reused converter for the other), Shape and Transpose readers absorb the difference,
 * and graph outputs keep their names.
 */
final class LayoutMaterializer {
    private final Graph graph;
    private final OpEmitter ops;
    private final LayoutSolver solver;
    private final Set<Node> converters;
    private final Set<Value> flipped;
    private final Set<Node> nhwcReaders;
    private final boolean ioNhwc;
    private final Map<Integer, String> outputNames = new TreeMap<>();
    private int added;
    private int rewritten;
    private int reshapeAdapters;
    private int shapeGathers;
    private int foldedPerms;

    LayoutMaterializer(Graph graph, OpEmitter ops, LayoutSolver solver, Set<Node> converters, Set<Value> flipped,
            Set<Node> nhwcReaders, boolean ioNhwc) {
        this.graph = graph;
        this.ops = ops;
        this.solver = solver;
        this.converters = converters;
        this.flipped = flipped;
        this.nhwcReaders = nhwcReaders;
        this.ioNhwc = ioNhwc;
    }

    /** Materialises every touched logical tensor, then gives graph outputs back their names. */
    void run() {
        for (List<Value> tensor : logicalTensors()) {
            materialize(tensor);
        }
        renameOutputs();
    }

    int added() {
        return added;
    }

    int rewritten() {
        return rewritten;
    }

    int reshapeAdapters() {
        return reshapeAdapters;
    }

    int shapeGathers() {
        return shapeGathers;
    }

    int foldedPerms() {
        return foldedPerms;
    }

    /**
     * Groups of values that are layouts of one logical tensor, for every value whose readers or
     * producer changed layout, every converter, and the graph's 4-D inputs and outputs.
     */
    private List<List<Value>> logicalTensors() {
        Set<Value> touched = new LinkedHashSet<>();
        for (Node t : converters) {
            touched.add(t.input(0));
            touched.add(t.output(0));
        }
        touched.addAll(flipped);
        for (Node n : nhwcReaders) {
            for (Value v : n.inputs()) {
                if (v != null && solver.known(v) && isAct4d(v)) {
                    touched.add(v);
                }
            }
        }
        if (ioNhwc) {
            graph.inputs().stream().filter(Layouts::isFloat4d).forEach(touched::add);
            graph.outputs().stream().filter(Layouts::isFloat4d).forEach(touched::add);
        }
        Map<Integer, List<Value>> byRoot = new LinkedHashMap<>();
        for (Value v : touched) {
            byRoot.computeIfAbsent(solver.tensorRoot(v), k -> new ArrayList<>());
        }
        for (Value v : List.copyOf(graph.values().values())) {
            if (solver.known(v) && graph.value(v.name()) == v) {
                List<Value> group = byRoot.get(solver.tensorRoot(v));
                if (group != null) {
                    group.add(v);
                }
            }
        }
        return new ArrayList<>(byRoot.values());
    }

    /** A reader slot: input {@code index} of {@code node}, or graph output {@code index} when node is null. */
    private record Slot(Node node, int index, int wants, boolean flexible) {
    }

    private void materialize(List<Value> members) {
        Set<Node> local = new LinkedHashSet<>();
        for (Value v : members) {
            for (Node c : v.consumerNodes()) {
                if (converters.contains(c)) {
                    local.add(c);
                }
            }
        }
        Value source = null;
        for (Value v : members) {
            if (v.producer() == null || !local.contains(v.producer())) {
                if (source != null) {
                    return; // two producers: not one logical tensor (cannot happen for a valid graph)
                }
                source = v;
            }
        }
        if (source == null) {
            return;
        }
        int current = solver.layoutOf(source);
        int layout = current;
        if (flipped.contains(source)) {
            layout = NHWC;
        } else if (ioNhwc && source.isGraphInput() && isFloat4d(source) && current == NCHW) {
            source.setShape(permute(source.shape(), TO_NHWC));
            layout = NHWC;
            rewritten++;
        }

        List<Slot> slots = new ArrayList<>();
        Set<Integer> needed = new LinkedHashSet<>();
        for (Value v : members) {
            int held = v == source ? current : solver.layoutOf(v);
            for (Node c : v.consumerNodes()) {
                if (local.contains(c)) {
                    continue;
                }
                for (int i = 0; i < c.inputCount(); i++) {
                    if (c.input(i) != v) {
                        continue;
                    }
                    Slot s;
                    if (nhwcReaders.contains(c)) {
                        s = new Slot(c, i, NHWC, false);
                    } else if (isPlainShape(c) || c.is("Transpose") && !converters.contains(c) && isAct4d(v)) {
                        s = new Slot(c, i, held, true);
                    } else {
                        s = new Slot(c, i, held, false);
                    }
                    slots.add(s);
                    if (!s.flexible()) {
                        needed.add(s.wants());
                    }
                }
            }
            for (int k = 0; k < graph.outputs().size(); k++) {
                if (graph.outputs().get(k) == v) {
                    int wants = ioNhwc && isFloat4d(v) ? NHWC : held;
                    slots.add(new Slot(null, k, wants, false));
                    needed.add(wants);
                }
            }
        }

        Value[] held = new Value[2];
        held[layout] = source;
        for (int l : needed) {
            if (held[l] == null) {
                held[l] = convert(source, layout, l, local, layout != current);
            }
        }
        for (Slot s : slots) {
            Value want = held[s.wants()];
            if (s.node() == null) {
                if (graph.outputs().get(s.index()) != want) {
                    outputNames.putIfAbsent(s.index(), graph.outputs().get(s.index()).name());
                    graph.setOutput(s.index(), want);
                    rewritten++;
                }
            } else if (want != null) {
                if (s.node().input(s.index()) != want) {
                    s.node().setInput(s.index(), want);
                    rewritten++;
                }
            } else {
                readOtherLayout(s, held[layout], layout);
            }
        }
    }

    /** The {@code to} layout of {@code source} (held in {@code from}): an existing converter when there is one. */
    private Value convert(Value source, int from, int to, Set<Node> local, boolean sourceChanged) {
        long[] perm = to == NHWC ? TO_NHWC : TO_NCHW;
        if (!sourceChanged) {
            for (Node c : graph.nodes()) {
                if (local.contains(c) && c.input(0) == source && isPerm(c, perm)) {
                    return c.output(0);
                }
            }
        }
        Shape shape = source.shape();
        Shape target = permute(shape, perm);
        String name = source.name() + (to == NHWC ? "_nhwc" : "_nchw");
        Value out;
        boolean pointwise = shape != null && shape.rank() == 4 && (from == NCHW
                ? isOne(shape.dim(2)) && isOne(shape.dim(3)) : isOne(shape.dim(1)) && isOne(shape.dim(2)));
        if (pointwise) {
            // [N,C,1,1] ↔ [N,1,1,C]: the same bytes, so a Reshape (no copy) instead of a Transpose
            long[] dims = from == NCHW ? new long[] {0, 1, 1, -1} : new long[] {0, -1, 1, 1};
            out = ops.op("Reshape", name, List.of(source, graph.constant(name + "_shape", TensorData.vector(dims))), null);
            reshapeAdapters++;
        } else {
            out = ops.op("Transpose", name, List.of(source), Map.of("perm", perm));
        }
        out.setTypeAndShape(source.type(), target);
        added++;
        return out;
    }

    /**
     * A Shape or Transpose reader that wanted a layout nobody else needs: it reads the layout
     * there is, and a Gather of the shape (Shape) or a composed perm (Transpose) makes up the
     * difference, so no Transpose is added for it.
     */
    private void readOtherLayout(Slot s, Value have, int haveLayout) {
        Node n = s.node();
        long[] conversion = haveLayout == NHWC ? TO_NCHW : TO_NHWC; // have → wanted
        n.setInput(s.index(), have);
        rewritten++;
        if (n.is("Shape")) {
            Value shape = n.output(0);
            Value gathered = ops.op("Gather", n.name() + "_layout", List.of(shape,
                    graph.constant(n.name() + "_layout_order", TensorData.vector(conversion))), Map.of("axis", 0L));
            gathered.setTypeAndShape(shape.type(), shape.shape());
            for (Node c : List.copyOf(shape.consumerNodes())) {
                for (int i = 0; i < c.inputCount(); i++) {
                    if (c.input(i) == shape && c != gathered.producer()) {
                        c.setInput(i, gathered);
                    }
                }
            }
            for (int k = 0; k < graph.outputs().size(); k++) {
                if (graph.outputs().get(k) == shape) {
                    outputNames.putIfAbsent(k, shape.name());
                    graph.setOutput(k, gathered);
                }
            }
            added++;
            shapeGathers++;
        } else {
            long[] perm = perm(n, 4);
            long[] composed = new long[4];
            for (int i = 0; i < 4; i++) {
                composed[i] = conversion[(int) perm[i]];
            }
            n.setAttr("perm", composed);
            foldedPerms++;
        }
    }

    /** Graph outputs keep their names: the value now at an output slot takes the name of the one it replaced. */
    private void renameOutputs() {
        outputNames.forEach((k, name) -> {
            Value now = graph.outputs().get(k);
            if (now.name().equals(name)) {
                return;
            }
            Value old = graph.value(name);
            if (old != null) {
                graph.rename(old, graph.uniqueValueName(name + (solver.layoutOf(old) == NHWC || flipped.contains(old) ? "_nhwc" : "_nchw")));
            }
            graph.rename(now, name);
        });
    }
}
