package dev.sdrt.graphs.passes;

import static dev.sdrt.graphs.passes.Layouts.NHWC;
import static dev.sdrt.graphs.passes.Layouts.TO_NCHW;
import static dev.sdrt.graphs.passes.Layouts.TO_NHWC;
import static dev.sdrt.graphs.passes.Layouts.allOnes;
import static dev.sdrt.graphs.passes.Layouts.gatherVector;
import static dev.sdrt.graphs.passes.Layouts.isSingleElement;
import static dev.sdrt.graphs.passes.Layouts.nhwcShape;
import static dev.sdrt.graphs.passes.Layouts.permute;
import static dev.sdrt.graphs.passes.Layouts.permuteData;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
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
 * and after (the fixtures' counts are in BENCHMARKS.md); graphs without convolution chains (CLIP,
 * SD3) keep theirs.
 *
 * <p>Not handled (left in their layout, with Transposes at their edges): Slice, Split, Pad,
 * reductions and Softmax over 4-D tensors, Reshapes (other than the GroupNorm pattern) and Resize
 * with a region of interest or cubic mode.
 */
public final class ChannelsLastPass implements GraphPass {
    static final Set<String> OPTIONS = Set.of("io");

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

    /**
     * One application: classify ({@link LayoutClassifier}), solve layouts ({@link LayoutSolver}),
     * switch the units of regions that touch a convolution to NHWC (here, GroupNorms by
     * {@link GroupNormNhwc}), give each logical tensor the layouts its readers need
     * ({@link LayoutMaterializer}), cancel inverse Transposes ({@link TransposePeephole}).
     */
    private final class Rewrite {
        private final Graph graph;
        private final OpEmitter ops;
        private final PassResult.Builder result;
        private final LayoutSolver solver;
        /** Nodes that read their 4-D activations in NHWC after the rewrite. */
        private final Set<Node> nhwcReaders = new LinkedHashSet<>();
        /** Values whose producer now writes NHWC where it wrote NCHW. */
        private final Set<Value> flipped = new LinkedHashSet<>();
        private final GroupNormNhwc groupNorms;
        private final Map<Value, Value> permutedConstants = new HashMap<>();
        /** Constants that switched nodes stopped reading (removed when nothing else reads them). */
        private final Set<Value> replacedConstants = new LinkedHashSet<>();
        private final Map<String, Integer> switched = new TreeMap<>();
        private int added;
        private int removed;
        private int rewritten;
        private int alreadyNhwc;
        private int reshapeAdapters;

        Rewrite(Graph graph, long opset, PassResult.Builder result) {
            this.graph = graph;
            this.ops = new OpEmitter(graph, opset);
            this.result = result;
            this.solver = new LayoutSolver(graph);
            this.groupNorms = new GroupNormNhwc(graph, ops, nhwcReaders, flipped);
        }

        void run() {
            int transposesBefore = transposeCount(graph);
            LayoutClassifier classes = new LayoutClassifier(graph);
            classes.classify();
            solver.solve(classes.anchorValues, classes.converters, classes.units);
            List<LayoutUnit> toSwitch = new ArrayList<>();
            for (LayoutUnit u : classes.units) {
                if (u.conflicting || !solver.isConvAdjacent(u.acts.get(0))) {
                    continue;
                }
                if (solver.layoutOf(u.acts.get(0)) == NHWC) {
                    alreadyNhwc++;
                    nhwcReaders.add(u.node);
                } else {
                    toSwitch.add(u);
                }
            }
            for (LayoutUnit u : toSwitch) {
                switchToNhwc(u);
                switched.merge(u.kind, 1, Integer::sum);
                result.affected(u.node.name());
            }
            // the replaced nodes' operands and the constants switched nodes stopped reading
            removed += graph.cleanup();
            LayoutMaterializer layouts = new LayoutMaterializer(graph, ops, solver, classes.converters, flipped, nhwcReaders, ioNhwc);
            layouts.run();
            int cancelledPairs = TransposePeephole.cancelInversePairs(graph);
            // dead layout converters and cancelled Transposes
            removed += graph.cleanup();
            graph.toposort();

            int count = toSwitch.size();
            result.matched(count).added(added + groupNorms.added() + layouts.added())
                    .removed(removed + groupNorms.removed()).rewritten(rewritten + layouts.rewritten());
            int transposesAfter = transposeCount(graph);
            result.note(String.format("%d nodes now compute in NHWC %s, %d already did; io=%s", count, switched,
                    alreadyNhwc, ioNhwc ? "nhwc" : "nchw (unchanged)"));
            result.note(String.format("Transposes %d → %d; %d Reshape layout adapters, %d Shape→Gather, %d perms folded,"
                    + " %d inverse pairs cancelled", transposesBefore, transposesAfter, reshapeAdapters + layouts.reshapeAdapters(),
                    layouts.shapeGathers(), layouts.foldedPerms(), cancelledPairs));
            if (solver.conflicts() > 0) {
                result.note(solver.conflicts() + " ops left in their layout: their tensors are needed in both layouts at once");
            }
        }

        // ---------------------------------------------------------------- switching units to NHWC

        private void switchToNhwc(LayoutUnit u) {
            Node n = u.node;
            switch (u.kind) {
                case "GroupNorm" -> {
                    groupNorms.decompose(u);
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

        private void permuteConstantInputs(Node n, LayoutUnit u, boolean trim) {
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
    }
}
