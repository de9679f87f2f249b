package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * DeepCache (Ma et al. 2023, "DeepCache: Accelerating Diffusion Models for Free"): splits a diffusers
 * UNet into a <em>full</em> graph, which also outputs a deep feature, and a <em>shallow</em> graph,
 * which takes that feature as an input and recomputes only the outermost layers. Between two full
 * steps the deep feature changes little, so the shallow graph can reuse the one cached at the last
 * full step.
 *
 * <h2>Where the graph is cut</h2>
 *
 * A UNet with {@code L} up blocks (diffusers numbers them from the lowest resolution: {@code
 * up_blocks.0} reads the mid block, {@code up_blocks.(L-1)} feeds {@code conv_norm_out}) is cut for
 * branch {@code b} (0 ≤ b ≤ L-2) at the main input of {@code up_blocks.(L-1-b)}:
 *
 * <pre>
 *   conv_in ─ down_blocks.0 … down_blocks.b ─┬─ down_blocks.(b+1) … mid_block … up_blocks.(L-2-b) ─▶ F
 *      │            │ skips                  │            (deep path: skipped by the shallow graph)
 *      │            ▼                        ▼
 *      └────▶ up_blocks.(L-1-b)(F, skips) … up_blocks.(L-1) ─ conv_norm_out ─ conv_act ─ conv_out ─▶ out_sample
 * </pre>
 *
 * The cached feature {@code F} is the hidden state produced by {@code up_blocks.(L-2-b)} (after its
 * upsampler): the tensor {@code up_blocks.(L-1-b)} concatenates with its first skip. Branch 0 keeps
 * only {@code down_blocks.0} and the last up block; each higher branch keeps one more level on each
 * side.
 *
 * <ul>
 *   <li><b>full</b>: the UNet unchanged, plus one graph output {@value #FEATURE} (the value {@code F},
 *       renamed).
 *   <li><b>shallow</b>: the UNet's inputs plus a graph input {@value #FEATURE} in {@code F}'s place,
 *       the same outputs; everything only the deep path needed is removed (time embedding, {@code
 *       conv_in}, {@code down_blocks.0..b} — minus {@code down_blocks.b}'s downsampler — {@code
 *       up_blocks.(L-1-b)..(L-1)} and the output head stay). The split is verified: no node of
 *       {@code down_blocks.(b+1)..}, {@code mid_block} or {@code up_blocks.0..(L-2-b)} may remain.
 * </ul>
 *
 * Running full on inputs X and then shallow on X and full's {@value #FEATURE} gives full's output
 * exactly (the same operators on the same values); DeepCache's approximation lies only in reusing
 * {@code F} at later steps.
 *
 * <h2>Module paths in node names</h2>
 *
 * The branch boundaries are module boundaries, so the splitter reads them from node names: both
 * sdrt's exporter ({@code /down_blocks.0/resnets.0/conv1/Conv}) and {@code torch.onnx.export} ({@code
 * /m/up_blocks.1/Concat}, any prefix) name nodes after the diffusers module that made them. The first
 * path segment (split at {@code /}) that reads {@code down_blocks.N}, {@code up_blocks.N} or {@code
 * mid_block} (alone or followed by {@code .}) gives a node's module; nodes without one (time
 * embedding glue, constants) belong to no block. A graph whose node names carry no such paths is
 * rejected with an explanation rather than guessed at.
 *
 * <p>The input model is not changed. Both results are new graphs that share the input's weight data
 * (nothing is copied); model-local functions (which neither exporter writes) are not carried over.
 */
public final class DeepCacheSplitter {
    /** Name of the full graph's extra output and of the shallow graph's extra input. */
    public static final String FEATURE = "deepcache_feature";

    /** Metadata keys written on both results. */
    public static final String META_ROLE = "sdrt.deepcache.role";
    public static final String META_BRANCH = "sdrt.deepcache.branch";
    public static final String META_FEATURE = "sdrt.deepcache.feature";

    private static final Pattern BLOCK = Pattern.compile("^(down_blocks|up_blocks)\\.(\\d+)(?:$|\\.)");
    private static final Pattern MID = Pattern.compile("^mid_block(?:$|\\.)");
    private static final String MID_BLOCK = "mid_block";

    private DeepCacheSplitter() {
    }

    /**
     * The two graphs of a DeepCache split.
     *
     * @param full the UNet with the extra output {@code cachedFeatureName}
     * @param shallow the UNet's outermost layers, reading {@code cachedFeatureName} as an input
     * @param cachedFeatureName {@value #FEATURE}: full's extra output and shallow's extra input
     * @param cachedFeatureShape the feature's shape as shape inference found it (symbolic batch
     *     dimensions stay symbolic); null when inference could not tell
     */
    public record Split(OnnxModel full, OnnxModel shallow, String cachedFeatureName, Shape cachedFeatureShape) {
    }

    /**
     * Node count and the work of the heavy operators, to compare full and shallow graphs.
     *
     * @param macs multiply-accumulates of every Conv, MatMul and Gemm whose shapes are known
     * @param unknown Conv/MatMul/Gemm nodes whose shapes were not known (not counted in {@code macs})
     */
    public record Cost(int nodes, int convs, int matMuls, int gemms, long macs, int unknown) {
        @Override
        public String toString() {
            return String.format("%d nodes, %d Conv, %d MatMul, %d Gemm, %.3f GMAC%s", nodes, convs, matMuls, gemms,
                    macs / 1e9, unknown > 0 ? " (+" + unknown + " of unknown shape)" : "");
        }
    }

    /** {@link #split(OnnxModel, int)} with branch 0: the shallowest cut, which skips the most. */
    public static Split split(OnnxModel unet) {
        return split(unet, 0);
    }

    /**
     * Splits {@code unet} for DeepCache branch {@code branch}; see the class comment.
     *
     * @throws IllegalArgumentException when the node names carry no diffusers module paths, the
     *     branch is outside {@code 0..L-2}, or the graph cannot be cut cleanly at that branch
     */
    public static Split split(OnnxModel unet, int branch) {
        Graph source = unet.graph();
        int upBlocks = upBlockCount(source);
        int maxBranch = upBlocks - 2;
        if (maxBranch < 0) {
            throw new IllegalArgumentException("graph '" + source.name() + "' has only " + upBlocks + " up block; DeepCache"
                    + " needs at least 2 (a deep path to cache and a shallow one to recompute)");
        }
        if (branch < 0 || branch > maxBranch) {
            throw new IllegalArgumentException(String.format("DeepCache branch %d is out of range for graph '%s': it has"
                    + " L = %d up blocks, so the branch must lie in 0..%d (branch b caches the output of"
                    + " up_blocks.(L-2-b) and recomputes up_blocks.(L-1-b) to up_blocks.(L-1))", branch, source.name(),
                    upBlocks, maxBranch));
        }
        if (source.value(FEATURE) != null) {
            throw new IllegalArgumentException("graph '" + source.name() + "' already has a value named " + FEATURE
                    + "; is it already a DeepCache graph?");
        }
        int entry = upBlocks - 1 - branch;
        String entryModule = "up_blocks." + entry;
        String feedingModule = entry == 0 ? MID_BLOCK : "up_blocks." + (entry - 1);

        OnnxModel full = copy(unet);
        Graph fullGraph = full.graph();
        inferShapes(full);
        Value feature = boundary(fullGraph, entryModule, feedingModule);
        if (feature.type() == null) {
            throw new IllegalArgumentException("the element type of " + feature.name() + " (the output of "
                    + feedingModule + ") is unknown and shape inference could not tell it");
        }
        Shape shape = nameDynamicDims(feature.shape(), fullGraph.value("sample"), branch);
        feature.setShape(shape);
        String original = feature.name();

        // shallow: F becomes an input; what only the deep path needed goes
        OnnxModel shallow = copy(full);
        Graph shallowGraph = shallow.graph();
        Value computed = shallowGraph.requireValue(original);
        Value input = shallowGraph.addInput(FEATURE, feature.type(), shape);
        shallowGraph.replaceAllUses(computed, input);
        shallowGraph.cleanup();
        checkDeepPathGone(shallowGraph, deepModules(branch, upBlocks), feedingModule);

        // full: F becomes an output as well
        fullGraph.rename(feature, FEATURE);
        fullGraph.addOutput(feature);

        mark(full, "full", branch, original);
        mark(shallow, "shallow", branch, original);
        return new Split(full, shallow, FEATURE, shape);
    }

    /** The largest valid branch for {@code unet}: its number of up blocks minus 2. */
    public static int maxBranch(OnnxModel unet) {
        return upBlockCount(unet.graph()) - 2;
    }

    /** Node count, Conv/MatMul/Gemm counts and their multiply-accumulates (shapes as last inferred). */
    public static Cost cost(OnnxModel model) {
        int convs = 0;
        int matMuls = 0;
        int gemms = 0;
        int unknown = 0;
        long macs = 0;
        for (Node n : model.graph().nodes()) {
            long m;
            if (n.is("Conv")) {
                convs++;
                m = convMacs(n);
            } else if (n.is("MatMul")) {
                matMuls++;
                m = matMulMacs(n);
            } else if (n.is("Gemm")) {
                gemms++;
                m = gemmMacs(n);
            } else {
                continue;
            }
            if (m < 0) {
                unknown++;
            } else {
                macs += m;
            }
        }
        return new Cost(model.graph().nodes().size(), convs, matMuls, gemms, macs, unknown);
    }

    /**
     * The diffusers module a node belongs to, from its name: "down_blocks.N", "up_blocks.N",
     * "mid_block", or null when no path segment names one.
     */
    static String moduleOf(Node node) {
        String name = node.name();
        if (name == null) {
            return null;
        }
        for (String segment : name.split("/")) {
            Matcher m = BLOCK.matcher(segment);
            if (m.find()) {
                return m.group(1) + "." + Integer.parseInt(m.group(2));
            }
            if (MID.matcher(segment).find()) {
                return MID_BLOCK;
            }
        }
        return null;
    }

    // ---------------- finding the cut ----------------

    private static int upBlockCount(Graph graph) {
        Set<Integer> up = new TreeSet<>();
        Set<Integer> down = new TreeSet<>();
        for (Node n : graph.nodes()) {
            String module = moduleOf(n);
            if (module == null || module.equals(MID_BLOCK)) {
                continue;
            }
            int index = Integer.parseInt(module.substring(module.indexOf('.') + 1));
            (module.startsWith("up_") ? up : down).add(index);
        }
        if (up.isEmpty()) {
            List<String> examples = graph.nodes().stream().map(Node::name).limit(3).toList();
            throw new IllegalArgumentException("cannot split graph '" + graph.name() + "' for DeepCache: no node name"
                    + " carries a diffusers module path (/down_blocks.N/..., /mid_block/..., /up_blocks.N/...). The"
                    + " splitter finds the branch boundaries from the module paths that sdrt's exporter and"
                    + " torch.onnx.export write into node names; this graph's nodes are named like " + examples
                    + ". Export the UNet with sdrt or torch.onnx.export without renaming its nodes.");
        }
        int count = up.size();
        if (!up.equals(range(count))) {
            throw new IllegalArgumentException("graph '" + graph.name() + "' has up blocks " + up
                    + " in its node names; DeepCache needs up_blocks.0.." + (count - 1) + " without gaps");
        }
        if (!down.equals(range(count))) {
            throw new IllegalArgumentException("graph '" + graph.name() + "' has up blocks " + up + " but down blocks "
                    + down + " in its node names; a diffusers UNet has as many of each");
        }
        return count;
    }

    private static Set<Integer> range(int count) {
        Set<Integer> s = new TreeSet<>();
        for (int i = 0; i < count; i++) {
            s.add(i);
        }
        return s;
    }

    /** The one computed value that {@code entryModule}'s nodes read from {@code feedingModule}'s. */
    private static Value boundary(Graph graph, String entryModule, String feedingModule) {
        Set<Value> crossing = new LinkedHashSet<>();
        boolean entrySeen = false;
        for (Node n : graph.nodes()) {
            if (!entryModule.equals(moduleOf(n))) {
                continue;
            }
            entrySeen = true;
            for (Value in : n.inputs()) {
                if (in != null && !in.isConstant() && in.producer() != null
                        && feedingModule.equals(moduleOf(in.producer()))) {
                    crossing.add(in);
                }
            }
        }
        if (!entrySeen || crossing.isEmpty()) {
            throw new IllegalArgumentException("cannot split graph '" + graph.name() + "' for DeepCache: no node of "
                    + entryModule + " reads a value computed by " + feedingModule
                    + ", so the main hidden state entering " + entryModule + " cannot be found");
        }
        if (crossing.size() > 1) {
            throw new IllegalArgumentException("cannot split graph '" + graph.name() + "' for DeepCache: " + entryModule
                    + " reads " + crossing.size() + " values computed by " + feedingModule + " ("
                    + crossing.stream().map(Value::name).toList() + "); a clean cut passes exactly one hidden state");
        }
        return crossing.iterator().next();
    }

    /** Modules the shallow graph must not contain: down_blocks.(b+1).., mid_block, up_blocks.0..(L-2-b). */
    private static Set<String> deepModules(int branch, int upBlocks) {
        Set<String> deep = new LinkedHashSet<>();
        for (int i = branch + 1; i < upBlocks; i++) {
            deep.add("down_blocks." + i);
        }
        deep.add(MID_BLOCK);
        for (int i = 0; i < upBlocks - 1 - branch; i++) {
            deep.add("up_blocks." + i);
        }
        return deep;
    }

    private static void checkDeepPathGone(Graph shallow, Set<String> deep, String feedingModule) {
        List<Node> left = new ArrayList<>();
        for (Node n : shallow.nodes()) {
            if (!n.is("Constant") && deep.contains(moduleOf(n))) {
                left.add(n);
            }
        }
        if (!left.isEmpty()) {
            List<String> readers = new ArrayList<>();
            for (Node n : left) {
                for (Value out : n.outputs()) {
                    for (Node c : out.consumerNodes()) {
                        if (!deep.contains(moduleOf(c))) {
                            readers.add(out.name() + " → " + c.name());
                        }
                    }
                }
            }
            throw new IllegalArgumentException("cannot split graph '" + shallow.name() + "' for DeepCache: besides the"
                    + " output of " + feedingModule + ", the shallow layers read values computed on the deep path "
                    + deep + ", so " + left.size() + " deep nodes would remain (e.g. "
                    + left.stream().map(Node::name).limit(5).toList() + "; read via "
                    + readers.stream().limit(5).toList() + ")");
        }
    }

    /**
     * Shape inference names the feature's dynamic dimensions arbitrarily ("unk__138"). The batch is
     * the sample's; for branch 0 the feature is concatenated with conv_in's output, so its height
     * and width are the sample's too. Those take the sample's symbolic names (sdrt's exporter writes
     * batch, height, width), which engine builders know how to size.
     */
    private static Shape nameDynamicDims(Shape shape, Value sample, int branch) {
        Shape reference = sample == null || !sample.isGraphInput() ? null : sample.shape();
        if (shape == null || shape.rank() != 4 || reference == null || reference.rank() != 4) {
            return shape;
        }
        List<Dim> dims = new ArrayList<>(shape.dims());
        for (int axis : branch == 0 ? new int[] {0, 2, 3} : new int[] {0}) {
            Dim named = reference.dim(axis);
            if (!dims.get(axis).isFixed() && !named.isFixed() && named.param() != null) {
                dims.set(axis, named);
            }
        }
        return Shape.of(dims);
    }

    private static void inferShapes(OnnxModel model) {
        try {
            OnnxChecker.inferShapes(model);
        } catch (OnnxChecker.OnnxCheckException e) {
            // the shapes the model states stay; the feature's shape may then be unknown
        }
    }

    private static void mark(OnnxModel model, String role, int branch, String original) {
        model.metadata().put(META_ROLE, role);
        model.metadata().put(META_BRANCH, Integer.toString(branch));
        model.metadata().put(META_FEATURE, FEATURE + " = " + original);
    }

    // ---------------- copying ----------------

    /** A structural copy sharing the (immutable) weight data. */
    static OnnxModel copy(OnnxModel model) {
        Graph from = model.graph();
        Graph to = new Graph(from.name());
        for (Value in : from.inputs()) {
            to.addInput(in.name(), in.type(), in.shape());
        }
        for (Value init : from.initializers()) {
            to.addInitializer(init.name(), init.constant());
        }
        for (Node n : from.nodes()) {
            List<Value> ins = new ArrayList<>();
            for (Value in : n.inputs()) {
                ins.add(in == null ? null : to.valueOrCreate(in.name()));
            }
            List<Value> outs = new ArrayList<>();
            for (Value out : n.outputs()) {
                outs.add(to.valueOrCreate(out.name()));
            }
            Node copy = to.addNode(n.opType(), n.domain(), n.name(), ins, outs);
            n.attributes().values().forEach(copy::setAttr);
            for (Value implicit : n.implicitInputs()) {
                to.addImplicitInput(copy, to.valueOrCreate(implicit.name()));
            }
        }
        for (Value v : from.values().values()) {
            Value c = to.value(v.name());
            if (c != null && !v.isConstant() && !v.isGraphInput()) {
                c.setTypeAndShape(v.type(), v.shape());
            }
        }
        for (Value out : from.outputs()) {
            to.addOutput(to.requireValue(out.name()));
        }
        OnnxModel result = new OnnxModel(to, model.opset());
        result.opsetImports().clear();
        result.opsetImports().putAll(model.opsetImports());
        result.setIrVersion(model.irVersion());
        result.setProducer(model.producerName(), "");
        result.metadata().putAll(model.metadata());
        return result;
    }

    // ---------------- multiply-accumulates ----------------

    /** Output elements × (input channels per group × kernel area); -1 when a shape is unknown. */
    private static long convMacs(Node n) {
        long out = elements(n.output(0).shape());
        Shape w = n.input(1) == null ? null : n.input(1).shape();
        if (out < 0 || w == null || w.numElements() < 0 || w.rank() < 2) {
            return -1;
        }
        return out * (w.numElements() / w.dim(0).value());
    }

    /** Output elements × the reduced dimension (A's last). */
    private static long matMulMacs(Node n) {
        long out = elements(n.output(0).shape());
        Shape a = n.input(0).shape();
        if (out < 0 || a == null || a.rank() == 0 || !a.dim(-1).isFixed()) {
            return -1;
        }
        return out * a.dim(-1).value();
    }

    private static long gemmMacs(Node n) {
        long out = elements(n.output(0).shape());
        Shape a = n.input(0).shape();
        if (out < 0 || a == null || a.rank() != 2) {
            return -1;
        }
        var k = a.dim(n.attrInt("transA", 0) != 0 ? 0 : 1);
        return k.isFixed() ? out * k.value() : -1;
    }

    private static long elements(Shape s) {
        return s == null ? -1 : s.numElements();
    }
}
