package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Constants;
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
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code channels-last}: the elementwise, normalization, resize and concat chains between
 * convolutions compute on NHWC tensors; convolutions (ONNX Conv is NCHW only) read and write NCHW
 * through a Transpose on each side, and Transposes that undo each other are cancelled.
 *
 * <pre>
 *   before                                         after
 *   Conv ─ GroupNorm ─ Mul(γ[C,1,1]) ─ SiLU ─ Conv  Conv ─ T(0,2,3,1) ─ GroupNorm' ─ Mul(γ[C]) ─ SiLU ─ T(0,3,1,2) ─ Conv
 *   Conv ─ T(0,2,3,1) ─ Reshape ─ Linear …          (a permute that only changed the layout: gone when its
 *   … Reshape ─ T(0,3,1,2) ─ Add(residual)           input or output is NHWC already)
 * </pre>
 *
 * <p>How it decides. Every 4-D value is a layout of a logical NCHW tensor. Transposes with perm
 * (0,2,3,1) or (0,3,1,2) are not ops but conversions between two layouts of one logical tensor.
 * Convolutions, pools, BatchNormalization and 4-D InstanceNormalization read and write NCHW. The
 * ops that can compute in either layout (elementwise unary and binary ops with broadcasting
 * constants, Where, Cast, Resize, Concat, and the GroupNorm pattern that exporters write, Reshape
 * [N,G,-1] → InstanceNormalization → Reshape back) are grouped into regions by the tensors they
 * share; a region touching a convolution computes in NHWC. Then each logical tensor gets one
 * value per layout its readers need: the one its producer writes, and at most one Transpose for the
 * other, reused when the graph already has it. Shape readers get a Gather of the other layout's
 * shape instead of a Transpose; a Transpose reader with another perm folds the conversion into its
 * perm; a [N,C,1,1] or [N,1,1,C] tensor changes layout by a Reshape. Adjacent Transposes that
 * compose to the identity are removed wherever they are. The pass is exact: it only moves data.
 *
 * <p>Rewrites in NHWC: constants broadcast against a region tensor are permuted ([C,1,1] becomes
 * [C]); Resize's scales or sizes are permuted (or its {@code axes} remapped); Concat's axis 1
 * becomes 3; the GroupNorm pattern becomes Reshape [N,HW,G,C/G] → ReduceMean over (1,3) → Sub →
 * Pow 2 → ReduceMean → Add ε → Sqrt → Div (→ Mul scale, Add bias) → Reshape back, since
 * InstanceNormalization wants the group axis at 1 and would need a Transpose of its own. Run
 * before {@code fp16}, the statistics stay float32: Pow and ReduceMean are in its default keep
 * list, and it keeps the Add ε, Sqrt and Div that follow such a variance by structure, so a group
 * whose variance exceeds 65504 does not overflow (the centred values themselves are half, as the
 * InstanceNormalization's input was).
 *
 * <p>{@code io=nhwc}: every 4-D floating-point graph input and output (sample, latent_sample,
 * hidden_states, out_sample, the VAE's sample: in the diffusion models sdrt handles these are the
 * only 4-D inputs and outputs) becomes NHWC, so a runtime hands images in and takes them out without
 * a reorder. {@code io=nchw} (the default) leaves inputs and outputs as they are.
 *
 * <p>What TensorRT makes of it. The layout of an ONNX tensor is logical: TensorRT picks the
 * physical format of every tensor itself (for fp16 and int8 convolutions on tensor cores a
 * vectorized channels-last format such as HWC8, or CHW32 for int8) and inserts reformat layers
 * where two layers disagree, whatever the ONNX graph says. The Transposes this pass leaves around
 * each Conv become Shuffle layers; where TensorRT folds a Shuffle that only swaps NCHW and NHWC into
 * its own reformat the chain in between runs in one format and reformats happen only at the region
 * boundaries; where it does not, each is a real copy, and a Shuffle between a Conv and its bias,
 * residual Add or SiLU can stop TensorRT from fusing them into the convolution's epilogue. So on
 * TensorRT the pass is a variant to measure ({@code sdrt bench}), not a default: it helps most
 * where the graph itself permutes between convolutions and transformers (linear-projection
 * Transformer2D, as in SDXL, whose two permutes per block disappear) and with {@code io=nhwc}; in
 * a convolution-dominated UNet (SD 1.x, where the permutes only move next to proj_in/proj_out) it
 * adds two Transposes per convolution and helps only if TensorRT removes them. Runtimes without a
 * layout optimizer of their own pay for every Transpose. The pass reports Transpose counts before
 * and after: on the tiny fixtures SD 1.x UNet 60 → 139, SDXL UNet 108 → 163 (its 12 permutes gone,
 * two per Conv added), VAE decoder 6 → 37; CLIP and SD3 (no convolution chains) unchanged.
 *
 * <p>Not handled (left in their layout, with Transposes at their edges): Slice, Split, Pad,
 * reductions and Softmax over 4-D tensors, Reshapes (other than the GroupNorm pattern) and Resize
 * with a region of interest or cubic mode.
 */
public final class ChannelsLastPass implements GraphPass {
    static final Set<String> OPTIONS = Set.of("io");

    /** NCHW → NHWC: out[n,h,w,c] = in[n,c,h,w]. */
    static final long[] TO_NHWC = {0, 2, 3, 1};
    /** NHWC → NCHW. */
    static final long[] TO_NCHW = {0, 3, 1, 2};
    private static final int NCHW = 0;
    private static final int NHWC = 1;

    /** Ops that read and write NCHW only (ONNX has no layout attribute for them). */
    private static final Set<String> ANCHORS = Set.of("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool",
            "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "BatchNormalization", "InstanceNormalization", "LRN",
            "DepthToSpace", "SpaceToDepth");

    /** Ops whose output element depends only on the same element of their (broadcast) inputs. */
    private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
            "Where", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "PRelu", "Mod",
            "Sigmoid", "Relu", "LeakyRelu", "Tanh", "Erf", "Sqrt", "Reciprocal", "Neg", "Exp", "Log", "Abs", "Softplus",
            "Softsign", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Gelu", "Mish", "Cast", "Identity", "Clip",
            "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Not", "IsNaN", "IsInf", "ThresholdedRelu");

    private final boolean ioNhwc;

    /** io=nchw: graph inputs and outputs keep their layout. */
    public ChannelsLastPass() {
        this(false);
    }

    /** @param ioNhwc whether 4-D floating-point graph inputs and outputs become NHWC */
    public ChannelsLastPass(boolean ioNhwc) {
        this.ioNhwc = ioNhwc;
    }

    /** From pipeline options: {@code io=nchw|nhwc}. */
    static ChannelsLastPass fromOptions(Map<String, String> options) {
        String io = options.getOrDefault("io", "nchw");
        if (!io.equals("nchw") && !io.equals("nhwc")) {
            throw new IllegalArgumentException("option io of pass channels-last must be nchw or nhwc, got '" + io + "'");
        }
        return new ChannelsLastPass(io.equals("nhwc"));
    }

    public boolean ioNhwc() {
        return ioNhwc;
    }

    @Override
    public String name() {
        return "channels-last";
    }

    @Override
    public PassResult apply(OnnxModel model) {
        Graph graph = model.graph();
        PassResult.Builder result = PassResult.begin(name(), graph);
        graph.toposort();
        OnnxChecker.inferShapes(model);
        new Rewrite(graph, model.opset(), result).run();
        return result.end(graph);
    }

    /** Number of Transpose nodes in {@code graph}. */
    public static int transposeCount(Graph graph) {
        return (int) graph.nodes().stream().filter(n -> n.is("Transpose")).count();
    }

    /** An op or op group that can compute in either layout, with the 4-D activations it reads and writes. */
    private static final class Unit {
        final String kind;
        final Node node;
        final List<Value> acts;
        /** GroupNorm pattern only. */
        Node reshapeIn;
        Node reshapeOut;
        long groups;
        /** The GroupNorm input's NCHW shape, read before any producer changed layout. */
        Shape shape;
        boolean conflicting;

        Unit(String kind, Node node, List<Value> acts) {
            this.kind = kind;
            this.node = node;
            this.acts = acts;
        }
    }

    private final class Rewrite {
        private final Graph graph;
        private final OpEmitter ops;
        private final PassResult.Builder result;
        private final Map<Value, Integer> ids = new HashMap<>();
        private final ParityUnionFind parity;
        private final UnionFind connected;
        private final UnionFind sameTensor;
        private final Set<Value> anchorValues = new LinkedHashSet<>();
        private final Set<Node> converters = new LinkedHashSet<>();
        private final List<Unit> units = new ArrayList<>();
        private Set<Integer> convRoots;
        /** Nodes that read their 4-D activations in NHWC after the rewrite. */
        private final Set<Node> nhwcReaders = new LinkedHashSet<>();
        /** Values whose producer now writes NHWC where it wrote NCHW. */
        private final Set<Value> flipped = new LinkedHashSet<>();
        private final Map<Value, Value> permutedConstants = new HashMap<>();
        /** Constants that switched nodes stopped reading (removed when nothing else reads them). */
        private final Set<Value> replacedConstants = new LinkedHashSet<>();
        private final Map<String, Integer> switched = new TreeMap<>();
        private final Map<Integer, String> outputNames = new TreeMap<>();
        private int added;
        private int removed;
        private int rewritten;
        private int alreadyNhwc;
        private int conflicts;
        private int reshapeAdapters;
        private int shapeGathers;
        private int foldedPerms;
        private int cancelledPairs;

        Rewrite(Graph graph, long opset, PassResult.Builder result) {
            this.graph = graph;
            this.ops = new OpEmitter(graph, opset);
            this.result = result;
            int n = 1;
            for (Value v : graph.values().values()) {
                ids.put(v, n++);
            }
            parity = new ParityUnionFind(n);
            connected = new UnionFind(n);
            sameTensor = new UnionFind(n);
        }

        private int id(Value v) {
            Integer i = ids.get(v);
            if (i == null) {
                throw new IllegalStateException("value " + v.name() + " appeared during analysis");
            }
            return i;
        }

        void run() {
            int transposesBefore = transposeCount(graph);
            classify();
            solveLayouts();
            List<Unit> toSwitch = new ArrayList<>();
            for (Unit u : units) {
                if (u.conflicting || !isConvAdjacent(u.acts.get(0))) {
                    continue;
                }
                if (layoutOf(u.acts.get(0)) == NHWC) {
                    alreadyNhwc++;
                    nhwcReaders.add(u.node);
                } else {
                    toSwitch.add(u);
                }
            }
            for (Unit u : toSwitch) {
                switchToNhwc(u);
                switched.merge(u.kind, 1, Integer::sum);
                result.affected(u.node.name());
            }
            // the replaced nodes' operands and the constants switched nodes stopped reading
            removed += graph.cleanup();
            for (List<Value> tensor : logicalTensors()) {
                materialize(tensor);
            }
            renameOutputs();
            cancelInversePairs();
            // dead layout converters and cancelled Transposes
            removed += graph.cleanup();
            graph.toposort();

            int count = toSwitch.size();
            result.matched(count).added(added).removed(removed).rewritten(rewritten);
            int transposesAfter = transposeCount(graph);
            result.note(String.format("%d nodes now compute in NHWC %s, %d already did; io=%s", count, switched,
                    alreadyNhwc, ioNhwc ? "nhwc" : "nchw (unchanged)"));
            result.note(String.format("Transposes %d → %d; %d Reshape layout adapters, %d Shape→Gather, %d perms folded,"
                    + " %d inverse pairs cancelled", transposesBefore, transposesAfter, reshapeAdapters, shapeGathers,
                    foldedPerms, cancelledPairs));
            if (conflicts > 0) {
                result.note(conflicts + " ops left in their layout: their tensors are needed in both layouts at once");
            }
        }

        // ---------------------------------------------------------------- classification

        private void classify() {
            for (Node n : graph.nodes()) {
                if (!n.domain().isEmpty()) {
                    continue;
                }
                if (ANCHORS.contains(n.opType()) && isAct4d(n.input(0))) {
                    anchorValues.add(n.input(0));
                    if (isAct4d(n.output(0))) {
                        anchorValues.add(n.output(0));
                    }
                } else if (n.is("Transpose") && isAct4d(n.input(0)) && (isPerm(n, TO_NHWC) || isPerm(n, TO_NCHW))) {
                    converters.add(n);
                } else if (n.is("InstanceNormalization")) {
                    Unit gn = groupNorm(n);
                    if (gn != null) {
                        units.add(gn);
                    }
                } else {
                    Unit u = capable(n);
                    if (u != null) {
                        units.add(u);
                    }
                }
            }
        }

        /** An elementwise op, Resize or Concat that can compute in NHWC, or null. */
        private Unit capable(Node n) {
            if (n.outputs().size() != 1 || !isAct4d(n.output(0)) || n.attributes().values().stream().anyMatch(a -> a.hasG())) {
                return null;
            }
            List<Value> acts = new ArrayList<>();
            if (ELEMENTWISE.contains(n.opType())) {
                for (Value v : n.inputs()) {
                    if (v == null) {
                        continue;
                    }
                    if (isAct4d(v)) {
                        acts.add(v);
                    } else if (Constants.isConstant(v)) {
                        if (Constants.data(v).rank() > 4) {
                            return null;
                        }
                    } else if (!isSingleElement(v) && nhwcShape(v) == null) {
                        return null;
                    }
                }
            } else if (n.is("Resize")) {
                if (!isAct4d(n.input(0)) || !resizable(n)) {
                    return null;
                }
                acts.add(n.input(0));
            } else if (n.is("Concat")) {
                for (Value v : n.inputs()) {
                    if (isAct4d(v)) {
                        acts.add(v);
                    } else if (v == null || !Constants.isConstant(v) || Constants.data(v).rank() != 4) {
                        return null;
                    }
                }
            } else {
                return null;
            }
            if (acts.isEmpty()) {
                return null;
            }
            acts.add(n.output(0));
            return new Unit(n.opType(), n, acts);
        }

        private boolean resizable(Node n) {
            String mode = n.attrString("mode", "nearest");
            if (!mode.equals("nearest") && !mode.equals("linear")) {
                return false;
            }
            Value roi = n.input(1);
            boolean cropping = n.attrString("coordinate_transformation_mode", "half_pixel").equals("tf_crop_and_resize");
            if (cropping && roi != null && !(Constants.isConstant(roi) && Constants.data(roi).numElements() == 0)) {
                return false;
            }
            if (n.hasAttr("axes")) {
                return true;
            }
            for (int i = 2; i <= 3; i++) {
                Value v = n.input(i);
                if (v == null || Constants.isConstant(v) && Constants.data(v).numElements() == 0) {
                    continue;
                }
                Shape s = v.shape();
                if (s == null || s.rank() != 1 || s.dim(0).value() != 4) {
                    return false;
                }
            }
            return true;
        }

        /**
         * The GroupNorm pattern around {@code in}: x [N,C,H,W] → Reshape [N|0, G, -1|…] →
         * InstanceNormalization(scale[G], bias[G]) → Reshape(Shape of a tensor shaped like x, or x's
         * static shape) → y [N,C,H,W]; or null.
         */
        private Unit groupNorm(Node in) {
            Value grouped = in.input(0);
            Node r1 = grouped == null ? null : grouped.producer();
            if (r1 == null || !r1.is("Reshape") || grouped.consumerNodes().size() != 1 || grouped.isGraphOutput()
                    || in.outputs().size() != 1) {
                return null;
            }
            Value x = r1.input(0);
            if (!isAct4d(x) || !x.shape().dim(1).isFixed()) {
                return null;
            }
            DataType type = x.type();
            if (type != DataType.FLOAT && type != DataType.FLOAT16 && type != DataType.BFLOAT16) {
                return null;
            }
            long channels = x.shape().dim(1).value();
            if (!Constants.isConstant(r1.input(1))) {
                return null;
            }
            long[] target = Constants.data(r1.input(1)).toLongs();
            if (target.length != 3 || target[1] <= 0 || channels % target[1] != 0) {
                return null;
            }
            long groups = target[1];
            Dim batch = x.shape().dim(0);
            if (!(target[0] == 0 || batch.isFixed() && target[0] == batch.value())) {
                return null;
            }
            long rest = x.shape().dim(2).isFixed() && x.shape().dim(3).isFixed()
                    ? channels / groups * x.shape().dim(2).value() * x.shape().dim(3).value() : -2;
            if (!(target[2] == -1 || target[2] == rest)) {
                return null;
            }
            for (int i = 1; i <= 2; i++) {
                Value p = in.input(i);
                if (p == null || !Constants.isConstant(p) || Constants.data(p).numElements() != groups) {
                    return null;
                }
            }
            Value normed = in.output(0);
            Node r2 = normed.soleConsumer();
            if (r2 == null || !r2.is("Reshape") || r2.input(0) != normed || normed.consumers().size() != 1) {
                return null;
            }
            Value back = r2.input(1);
            boolean restores;
            if (back.producer() != null && back.producer().is("Shape") && !back.producer().hasAttr("start")
                    && !back.producer().hasAttr("end")) {
                Value of = back.producer().input(0);
                restores = of == x || of.shape() != null && of.shape().equals(x.shape()) && x.shape().isFullyFixed();
            } else {
                restores = Constants.isConstant(back) && x.shape().isFullyFixed()
                        && Arrays.equals(Constants.data(back).toLongs(), x.shape().toArray());
            }
            Value y = r2.output(0);
            if (!restores || !isAct4d(y) || !y.shape().equals(x.shape())) {
                return null;
            }
            Unit u = new Unit("GroupNorm", in, new ArrayList<>(List.of(x, y)));
            u.reshapeIn = r1;
            u.reshapeOut = r2;
            u.groups = groups;
            u.shape = x.shape();
            return u;
        }

        // ---------------------------------------------------------------- layout solving

        /**
         * Anchors read and write NCHW; a converter's input and output hold opposite layouts; a unit's
         * activations share one. A converter or unit that contradicts what is known already keeps its
         * current layout. Units and converters also join tensors into connected regions.
         */
        private void solveLayouts() {
            for (Value v : anchorValues) {
                parity.union(id(v), 0, NCHW);
            }
            for (Node t : List.copyOf(converters)) {
                int in = id(t.input(0));
                int out = id(t.output(0));
                int inLayout = isPerm(t, TO_NHWC) ? NCHW : NHWC;
                boolean ok = parity.consistent(in, 0, inLayout) && parity.consistent(out, 0, 1 - inLayout)
                        && parity.consistent(in, out, 1);
                if (!ok) {
                    converters.remove(t);
                    continue;
                }
                parity.union(in, 0, inLayout);
                parity.union(out, 0, 1 - inLayout);
                connected.union(in, out);
                sameTensor.union(in, out);
            }
            for (Unit u : units) {
                Map<Integer, Integer> rootParity = new HashMap<>();
                boolean ok = true;
                for (Value v : u.acts) {
                    int i = id(v);
                    int root = parity.find(i);
                    Integer seen = rootParity.putIfAbsent(root, parity.parityToRoot(i));
                    if (seen != null && seen != parity.parityToRoot(i)) {
                        ok = false;
                    }
                }
                if (!ok) {
                    u.conflicting = true;
                    conflicts++;
                    continue;
                }
                int first = id(u.acts.get(0));
                for (Value v : u.acts) {
                    parity.union(first, id(v), 0);
                    connected.union(first, id(v));
                }
            }
        }

        private boolean isConvAdjacent(Value v) {
            if (convRoots == null) {
                convRoots = new HashSet<>();
                for (Value a : anchorValues) {
                    convRoots.add(connected.find(id(a)));
                }
            }
            return convRoots.contains(connected.find(id(v)));
        }

        /** The layout {@code v} holds now: fixed by anchors, converters and units, else NCHW. */
        private int layoutOf(Value v) {
            Integer i = ids.get(v);
            if (i == null || !parity.determined(i)) {
                return NCHW;
            }
            return parity.layout(i);
        }

        // ---------------------------------------------------------------- switching units to NHWC

        private void switchToNhwc(Unit u) {
            Node n = u.node;
            switch (u.kind) {
                case "GroupNorm" -> {
                    decomposeGroupNorm(u);
                    return;
                }
                case "Resize" -> switchResize(n);
                case "Concat" -> {
                    long axis = n.attrInt("axis", 1);
                    n.setAttr("axis", TO_NCHW[(int) (axis < 0 ? axis + 4 : axis)]);
                    permuteConstantInputs(n, u, false);
                }
                default -> permuteConstantInputs(n, u, true);
            }
            Value out = n.output(0);
            out.setShape(permute(out.shape(), TO_NHWC));
            flipped.add(out);
            nhwcReaders.add(n);
            rewritten++;
        }

        private void permuteConstantInputs(Node n, Unit u, boolean trim) {
            for (int i = 0; i < n.inputCount(); i++) {
                Value v = n.input(i);
                if (v == null || u.acts.contains(v)) {
                    continue;
                }
                if (!Constants.isConstant(v)) {
                    long[] dims = isSingleElement(v) ? null : nhwcShape(v);
                    if (dims != null) {
                        // a computed [C,1,1] (a norm's γ reshaped at run time): its NHWC form [C] is the same bytes
                        Value r = ops.op("Reshape", n.name() + "_nhwc_operand", List.of(v, graph.constant(v.name() + "_nhwc_shape",
                                TensorData.vector(dims))), null);
                        r.setTypeAndShape(v.type(), Shape.of(dims));
                        n.setInput(i, r);
                        added++;
                        reshapeAdapters++;
                    }
                    continue;
                }
                TensorData data = Constants.data(v);
                if (data.numElements() <= 1 || allOnes(data.dims())) {
                    continue;
                }
                n.setInput(i, permutedConstant(v, trim));
                replacedConstants.add(v);
            }
        }

        /**
         * A constant broadcast against NCHW tensors, as one broadcast against their NHWC layouts;
         * {@code trim} drops the leading 1s that broadcasting does not need ([1,1,1,C] → [C]).
         */
        private Value permutedConstant(Value v, boolean trim) {
            return permutedConstants.computeIfAbsent(v, k -> {
                TensorData data = Constants.data(v);
                long[] dims = data.dims();
                long[] padded = new long[4];
                Arrays.fill(padded, 1);
                System.arraycopy(dims, 0, padded, 4 - dims.length, dims.length);
                TensorData moved = permuteData(data.reshape(padded), TO_NHWC);
                long[] out = moved.dims();
                int lead = 0;
                while (trim && lead < 3 && out[lead] == 1) {
                    lead++;
                }
                long[] trimmed = Arrays.copyOfRange(out, lead, 4);
                return graph.constant(v.name() + "_nhwc", moved.reshape(trimmed));
            });
        }

        private void switchResize(Node n) {
            if (n.hasAttr("axes")) {
                long[] axes = n.attrInts("axes");
                long[] mapped = new long[axes.length];
                for (int i = 0; i < axes.length; i++) {
                    mapped[i] = TO_NCHW[(int) (axes[i] < 0 ? axes[i] + 4 : axes[i])];
                }
                n.setAttr("axes", mapped);
                return;
            }
            for (int i = 2; i <= 3 && i < n.inputCount(); i++) {
                Value v = n.input(i);
                if (v == null || Constants.isConstant(v) && Constants.data(v).numElements() == 0) {
                    continue;
                }
                if (Constants.isConstant(v)) {
                    n.setInput(i, graph.constant(v.name() + "_nhwc", gatherVector(Constants.data(v), TO_NHWC)));
                    replacedConstants.add(v);
                } else {
                    Value g = ops.op("Gather", n.name() + "_nhwc_" + (i == 2 ? "scales" : "sizes"),
                            List.of(v, graph.constant("nhwc_order", TensorData.vector(TO_NHWC))), Map.of("axis", 0L));
                    g.setTypeAndShape(v.type(), v.shape());
                    n.setInput(i, g);
                    added++;
                }
            }
        }

        /**
         * x [N,C,H,W] held as [N,H,W,C] → Reshape [0,-1,G,C/G] → mean and variance over axes 1 and
         * 3 → (x − mean) / sqrt(var + ε) → × scale[G,1] + bias[G,1] when not 1 and 0 → Reshape to
         * the input's shape. The output value keeps its name and readers.
         */
        private void decomposeGroupNorm(Unit u) {
            Node in = u.node;
            Value x = u.acts.get(0);
            Value y = u.acts.get(1);
            DataType type = x.type();
            long channels = u.shape.dim(1).value();
            long g = u.groups;
            String base = in.name() + "_nhwc";
            float eps = in.attrFloat("epsilon", 1e-5f);
            float[] scale = Constants.data(in.input(1)).toFloats();
            float[] bias = Constants.data(in.input(2)).toFloats();
            List<Node> old = new ArrayList<>(List.of(u.reshapeIn, in, u.reshapeOut));

            Shape xs = permute(u.shape, TO_NHWC);
            Dim pixels = xs.dim(1).isFixed() && xs.dim(2).isFixed() ? Dim.of(xs.dim(1).value() * xs.dim(2).value()) : Dim.UNKNOWN;
            Shape grouped = Shape.of(List.of(xs.dim(0), pixels, Dim.of(g), Dim.of(channels / g)));
            Shape stats = Shape.of(List.of(xs.dim(0), Dim.of(1), Dim.of(g), Dim.of(1)));

            Value r = node("Reshape", base + "_group", List.of(x, graph.constant(base + "_group_shape",
                    TensorData.vector(0, -1, g, channels / g))), type, grouped);
            nhwcReaders.add(r.producer());
            Value mean = reduceMean(base + "_mean", r, type, stats);
            Value d = node("Sub", base + "_center", List.of(r, mean), type, grouped);
            // Pow, not Mul: fp16 keeps Pow and ReduceMean in float32 by default, so the sum of squares cannot overflow
            Value sq = node("Pow", base + "_square", List.of(d, graph.constant(base + "_two",
                    TensorData.ofFloatsAs(type, new long[0], new float[] {2f}))), type, grouped);
            Value var = reduceMean(base + "_var", sq, type, stats);
            Value ve = node("Add", base + "_eps", List.of(var, graph.constant(base + "_epsilon",
                    TensorData.ofFloatsAs(type, new long[0], new float[] {eps}))), type, stats);
            Value sd = node("Sqrt", base + "_std", List.of(ve), type, stats);
            Value normed = node("Div", base + "_normalize", List.of(d, sd), type, grouped);
            if (!allEqual(scale, 1f)) {
                normed = node("Mul", base + "_scale", List.of(normed, graph.constant(base + "_scale",
                        TensorData.ofFloatsAs(type, new long[] {g, 1}, scale))), type, grouped);
            }
            if (!allEqual(bias, 0f)) {
                normed = node("Add", base + "_bias", List.of(normed, graph.constant(base + "_bias",
                        TensorData.ofFloatsAs(type, new long[] {g, 1}, bias))), type, grouped);
            }
            Value shape = node("Shape", base + "_shape", List.of(x), DataType.INT64, Shape.of(4));
            nhwcReaders.add(shape.producer());

            // the restoring Reshape writes y itself, so its name and readers stay; the rest goes in cleanup
            for (Node n : old) {
                graph.removeNode(n);
                removed++;
            }
            graph.addNode("Reshape", "", base + "_restore", List.of(normed, shape), List.of(y));
            y.setShape(xs);
            added++;
            flipped.add(y);
        }

        private Value reduceMean(String name, Value x, DataType type, Shape shape) {
            added++;
            return ops.reduce("ReduceMean", name, x, true, 1, 3).setTypeAndShape(type, shape);
        }

        private Value node(String op, String name, List<Value> inputs, DataType type, Shape shape) {
            return node(op, name, inputs, type, shape, null);
        }

        private Value node(String op, String name, List<Value> inputs, DataType type, Shape shape, Map<String, Object> attrs) {
            Value out = ops.op(op, name, inputs, attrs);
            out.setTypeAndShape(type, shape);
            added++;
            return out;
        }

        // ---------------------------------------------------------------- one value per layout per logical tensor

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
                    if (v != null && ids.containsKey(v) && isAct4d(v)) {
                        touched.add(v);
                    }
                }
            }
            if (ioNhwc) {
                graph.inputs().stream().filter(ChannelsLastPass::isFloat4d).forEach(touched::add);
                graph.outputs().stream().filter(ChannelsLastPass::isFloat4d).forEach(touched::add);
            }
            Map<Integer, List<Value>> byRoot = new LinkedHashMap<>();
            for (Value v : touched) {
                byRoot.computeIfAbsent(sameTensor.find(id(v)), k -> new ArrayList<>());
            }
            for (Value v : List.copyOf(graph.values().values())) {
                Integer i = ids.get(v);
                if (i != null && graph.value(v.name()) == v) {
                    List<Value> group = byRoot.get(sameTensor.find(i));
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
            int current = layoutOf(source);
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
                int held = v == source ? current : layoutOf(v);
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
                    graph.rename(old, graph.uniqueValueName(name + (layoutOf(old) == NHWC || flipped.contains(old) ? "_nhwc" : "_nchw")));
                }
                graph.rename(now, name);
            });
        }

        /** Transpose → Transpose whose perms compose to the identity: readers of the second read the first's input. */
        private void cancelInversePairs() {
            for (Node t2 : List.copyOf(graph.nodes())) {
                if (!t2.is("Transpose") || t2.graph() != graph || !graph.nodes().contains(t2)) {
                    continue;
                }
                Value mid = t2.input(0);
                Node t1 = mid.producer();
                Value out = t2.output(0);
                if (t1 == null || !t1.is("Transpose") || out.isGraphOutput() || out.consumers().isEmpty() || mid.shape() == null) {
                    continue;
                }
                int rank = mid.shape().rank();
                long[] p1 = perm(t1, rank);
                long[] p2 = perm(t2, rank);
                boolean identity = p1.length == p2.length;
                for (int i = 0; identity && i < p2.length; i++) {
                    identity = p1[(int) p2[i]] == i;
                }
                if (!identity) {
                    continue;
                }
                // t2 (and t1 when nothing else reads it) goes in cleanup
                graph.replaceAllUses(out, t1.input(0));
                cancelledPairs++;
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    /** A computed (not constant) value known to be 4-D. */
    private static boolean isAct4d(Value v) {
        return v != null && !Constants.isConstant(v) && v.shape() != null && v.shape().rank() == 4;
    }

    private static boolean isFloat4d(Value v) {
        return v.shape() != null && v.shape().rank() == 4 && v.type() != null && v.type().isFloatingPoint();
    }

    /**
     * For a computed operand of rank below 4 with a static shape that broadcasts against NCHW
     * tensors: the shape that broadcasts the same way against NHWC ones, leading 1s dropped, when
     * the move is a reshape (the channel dimension is 1, or both spatial ones are); else null.
     */
    private static long[] nhwcShape(Value v) {
        Shape s = v.shape();
        if (s == null || s.rank() >= 4 || !s.isFullyFixed()) {
            return null;
        }
        long[] dims = s.toArray();
        long[] padded = new long[4];
        Arrays.fill(padded, 1);
        System.arraycopy(dims, 0, padded, 4 - dims.length, dims.length);
        if (padded[1] != 1 && (padded[2] != 1 || padded[3] != 1)) {
            return null;
        }
        long[] moved = {padded[0], padded[2], padded[3], padded[1]};
        int lead = 0;
        while (lead < 3 && moved[lead] == 1) {
            lead++;
        }
        return Arrays.copyOfRange(moved, lead, 4);
    }

    private static boolean isSingleElement(Value v) {
        return v.shape() != null && v.shape().numElements() == 1;
    }

    private static boolean isOne(Dim d) {
        return d.isFixed() && d.value() == 1;
    }

    private static boolean isPlainShape(Node n) {
        return n.is("Shape") && !n.hasAttr("start") && !n.hasAttr("end");
    }

    private static boolean allOnes(long[] dims) {
        for (long d : dims) {
            if (d != 1) {
                return false;
            }
        }
        return true;
    }

    private static boolean allEqual(float[] values, float v) {
        for (float f : values) {
            if (f != v) {
                return false;
            }
        }
        return true;
    }

    private static boolean isPerm(Node transpose, long[] perm) {
        return Arrays.equals(perm(transpose, perm.length), perm);
    }

    /** A Transpose's perm; absent means reversed axes. */
    static long[] perm(Node transpose, int rank) {
        long[] perm = transpose.attrInts("perm");
        if (perm != null) {
            return perm;
        }
        long[] reversed = new long[rank];
        for (int i = 0; i < rank; i++) {
            reversed[i] = rank - 1 - i;
        }
        return reversed;
    }

    /** out.dims[i] = in.dims[perm[i]]; null stays null. */
    static Shape permute(Shape shape, long[] perm) {
        if (shape == null || shape.rank() != perm.length) {
            return shape;
        }
        List<Dim> dims = new ArrayList<>();
        for (long p : perm) {
            dims.add(shape.dim((int) p));
        }
        return Shape.of(dims);
    }

    /** Elements {@code order[i]} of a rank-1 tensor. */
    private static TensorData gatherVector(TensorData v, long[] order) {
        int elem = v.type().byteSize();
        ByteBuffer in = v.bytes();
        ByteBuffer out = ByteBuffer.allocate(order.length * elem).order(ByteOrder.LITTLE_ENDIAN);
        for (long o : order) {
            for (int b = 0; b < elem; b++) {
                out.put(in.get((int) o * elem + b));
            }
        }
        return TensorData.of(v.type(), new long[] {order.length}, out.flip());
    }

    /** The tensor transposed by {@code perm} (any element type). */
    static TensorData permuteData(TensorData data, long[] perm) {
        long[] dims = data.dims();
        int rank = dims.length;
        if (perm.length != rank) {
            return data;
        }
        long[] outDims = new long[rank];
        for (int i = 0; i < rank; i++) {
            outDims[i] = dims[(int) perm[i]];
        }
        int elem = data.type().byteSize();
        int n = Math.toIntExact(data.numElements());
        long[] inStrides = new long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            inStrides[i] = s;
            s *= dims[i];
        }
        ByteBuffer in = data.bytes();
        ByteBuffer out = ByteBuffer.allocate(n * elem).order(ByteOrder.LITTLE_ENDIAN);
        long[] index = new long[rank];
        for (int k = 0; k < n; k++) {
            long src = 0;
            for (int i = 0; i < rank; i++) {
                src += index[i] * inStrides[(int) perm[i]];
            }
            for (int b = 0; b < elem; b++) {
                out.put(in.get((int) (src * elem) + b));
            }
            for (int i = rank - 1; i >= 0; i--) {
                if (++index[i] < outDims[i]) {
                    break;
                }
                index[i] = 0;
            }
        }
        return TensorData.of(data.type(), outDims, out.flip());
    }

    /** Union-find whose elements carry a parity (layout) relative to their root; element 0 is NCHW. */
    private static final class ParityUnionFind {
        private final int[] parent;
        private final int[] parity;
        private final int[] rank;

        ParityUnionFind(int n) {
            parent = new int[n];
            parity = new int[n];
            rank = new int[n];
            for (int i = 0; i < n; i++) {
                parent[i] = i;
            }
        }

        int find(int x) {
            int root = x;
            while (parent[root] != root) {
                root = parent[root];
            }
            // compress, accumulating parities from the top down
            List<Integer> path = new ArrayList<>();
            for (int y = x; parent[y] != y; y = parent[y]) {
                path.add(y);
            }
            for (int i = path.size() - 1; i >= 0; i--) {
                int y = path.get(i);
                int p = parent[y];
                if (p != root) {
                    parity[y] ^= parity[p];
                }
                parent[y] = root;
            }
            return root;
        }

        int parityToRoot(int x) {
            find(x);
            return parity[x];
        }

        boolean determined(int x) {
            return find(x) == find(0);
        }

        /** Layout relative to element 0 (NCHW). */
        int layout(int x) {
            return parityToRoot(x) ^ parityToRoot(0);
        }

        /** Whether a and b may hold layouts differing by {@code d}. */
        boolean consistent(int a, int b, int d) {
            return find(a) != find(b) || (parityToRoot(a) ^ parityToRoot(b)) == d;
        }

        void union(int a, int b, int d) {
            int ra = find(a);
            int rb = find(b);
            int pa = parity[a];
            int pb = parity[b];
            if (ra == rb) {
                return;
            }
            if (rank[ra] < rank[rb]) {
                int t = ra;
                ra = rb;
                rb = t;
                int tp = pa;
                pa = pb;
                pb = tp;
            }
            parent[rb] = ra;
            parity[rb] = pa ^ pb ^ d;
            if (rank[ra] == rank[rb]) {
                rank[ra]++;
            }
        }
    }

    private static final class UnionFind {
        private final int[] parent;

        UnionFind(int n) {
            parent = new int[n];
            for (int i = 0; i < n; i++) {
                parent[i] = i;
            }
        }

        int find(int x) {
            while (parent[x] != x) {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            return x;
        }

        void union(int a, int b) {
            parent[find(a)] = find(b);
        }
    }
}
