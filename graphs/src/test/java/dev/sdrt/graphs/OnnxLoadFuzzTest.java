package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;
import dev.sdrt.graphs.io.Messages;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.CleanupPass;
import dev.sdrt.runtime.Fixtures;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of valid models (the fixtures, and small built ones with and without external
 * data): protobuf bytes flipped, cut and spliced, and structured edits through the proto builders.
 * Each mutant either loads, and then cleans up and saves or is refused by save with an
 * {@link OnnxFormatException} (a saved one loads again), or is refused by load with an
 * {@link OnnxFormatException} whose message is non-empty and under {@link Messages#MAX_LENGTH}.
 * Nothing else may escape.
 */
class OnnxLoadFuzzTest {
    private static final long SEED = 0x0440_fa22L;
    /** Mutants of the small built models; every other one that loads also goes through cleanup and save. */
    private static final int SMALL_MUTANTS = 2000;
    /** Mutants of the fixtures, which are some 100 times larger; every 20th one that loads goes through cleanup and save. */
    private static final int FIXTURE_MUTANTS = 200;

    /** Also element type codes sdrt has no DataType for (14 complex64, 21 uint4) and opset 21, which has them. */
    private static final long[] HOSTILE_NUMBERS = {-1, 0, 1, 3, 7, 14, 21, 1L << 31, 1L << 40, Long.MAX_VALUE, Long.MIN_VALUE,
            Integer.MAX_VALUE, -4096};

    @TempDir
    Path tmp;

    /** A model to mutate, with the side files (external data) that go beside it. */
    private record Base(String name, ModelProto proto, Map<String, byte[]> sideFiles, boolean small) {
    }

    private record Mutation(String name, BiConsumer<ModelProto.Builder, Random> apply) {
    }

    private final List<String> failures = new ArrayList<>();
    private int loaded;
    private int refused;
    private int saved;
    private int saveRefused;

    @Test
    void mutantsLoadOrAreRefusedWithAShortOnnxFormatException() throws IOException {
        long start = System.nanoTime();
        List<Base> bases = bases();
        List<Base> small = bases.stream().filter(Base::small).toList();
        List<Base> fixtures = bases.stream().filter(b -> !b.small()).toList();
        Random random = new Random(SEED);
        List<Mutation> mutations = mutations();
        for (int i = 0; i < SMALL_MUTANTS + FIXTURE_MUTANTS; i++) {
            boolean isSmall = i < SMALL_MUTANTS;
            List<Base> from = isSmall ? small : fixtures;
            Base base = from.get(random.nextInt(from.size()));
            boolean pipeline = i % (isSmall ? 2 : 20) == 0; // cleanup and save take ten times as long as a load
            if (random.nextInt(5) < 3) {
                ModelProto.Builder b = base.proto().toBuilder();
                StringBuilder applied = new StringBuilder();
                for (int k = 1 + random.nextInt(3); k > 0; k--) {
                    Mutation m = mutations.get(random.nextInt(mutations.size()));
                    m.apply().accept(b, random);
                    applied.append(m.name()).append(' ');
                }
                check(b.build().toByteArray(), sideFiles(base, random), "#" + i + " of " + base.name() + ": " + applied,
                        pipeline);
            } else {
                byte[] bytes = base.proto().toByteArray();
                String how = mutateBytes(bytes, random);
                bytes = how.startsWith("cut") ? Arrays.copyOf(bytes, random.nextInt(bytes.length))
                        : how.startsWith("splice") ? splice(bytes, random) : bytes;
                check(bytes, base.sideFiles(), "#" + i + " of " + base.name() + ": " + how, pipeline);
            }
        }
        System.out.printf("OnnxLoadFuzzTest: %d mutants in %.1f s: %d loaded (%d saved, %d refused by save), %d refused by load%n",
                SMALL_MUTANTS + FIXTURE_MUTANTS, (System.nanoTime() - start) / 1e9, loaded, saved, saveRefused, refused);
        assertThat(failures).as("mutants that made something other than OnnxFormatException escape").isEmpty();
        assertThat(loaded).as("mutants that still load").isGreaterThan(200);
        assertThat(refused).as("mutants refused").isGreaterThan(1000);
    }

    // ---- running one mutant ----

    private void check(byte[] model, Map<String, byte[]> sideFiles, String what, boolean pipeline) {
        if (failures.size() >= 10) {
            return;
        }
        try {
            Path folder = tmp.resolve("case");
            Files.createDirectories(folder);
            Path file = folder.resolve("model.onnx");
            write(file, model);
            for (var e : sideFiles.entrySet()) {
                write(folder.resolve(e.getKey()), e.getValue());
            }
            OnnxModel m;
            try {
                m = OnnxModel.load(file);
            } catch (OnnxFormatException e) {
                checkMessage(e, what + " (load)");
                refused++;
                return;
            }
            loaded++;
            if (pipeline) {
                cleanupAndSave(m, what);
            }
        } catch (Throwable t) {
            StringWriter trace = new StringWriter();
            t.printStackTrace(new PrintWriter(trace));
            failures.add(what + ": " + Messages.cap(trace.toString(), 1500));
        }
    }

    /** What a command does with a model it loaded: the cleanup pass, then a save (which loads again). */
    private void cleanupAndSave(OnnxModel m, String what) throws IOException {
        new CleanupPass().apply(m);
        m.graph().cleanup();
        Path out = tmp.resolve("out/model.onnx");
        try {
            m.save(out, new SaveOptions(SaveOptions.ExternalData.AUTO, 256, 64, null, true));
        } catch (OnnxFormatException e) {
            checkMessage(e, what + " (save)");
            saveRefused++;
            return;
        }
        saved++;
        OnnxModel.load(out);
    }

    /** Deleted first: ext4 flushes a file that is truncated and rewritten when it is closed, some 2 ms each time. */
    private static void write(Path file, byte[] bytes) throws IOException {
        Files.deleteIfExists(file);
        Files.write(file, bytes);
    }

    private void checkMessage(Exception e, String what) {
        String message = e.getMessage();
        if (message == null || message.isBlank() || message.length() >= Messages.MAX_LENGTH) {
            failures.add(what + ": message of " + (message == null ? "null" : message.length() + " characters: "
                    + Messages.cap(message, 300)));
        }
    }

    // ---- base models ----

    private List<Base> bases() throws IOException {
        List<Base> bases = new ArrayList<>();
        for (String fixture : List.of("tiny_clip_text", "tiny_sd3_transformer")) {
            bases.add(new Base(fixture, ModelProto.parseFrom(Files.readAllBytes(Fixtures.model(fixture).resolve("model.onnx"))),
                    Map.of(), false));
        }
        bases.add(saved("linear_relu", TinyModels.linearRelu(), SaveOptions.defaults()));
        bases.add(saved("linear_relu_external", TinyModels.linearRelu(),
                new SaveOptions(SaveOptions.ExternalData.ALWAYS, 0, 0, null)));
        bases.add(saved("shape_arithmetic", shapeArithmetic(), SaveOptions.defaults()));
        bases.add(saved("shape_arithmetic_external", shapeArithmetic(),
                new SaveOptions(SaveOptions.ExternalData.ALWAYS, 0, 0, null)));
        for (Base b : bases) {
            Path folder = tmp.resolve("base_check/" + b.name());
            Files.createDirectories(folder);
            Files.write(folder.resolve("model.onnx"), b.proto().toByteArray());
            for (var e : b.sideFiles().entrySet()) {
                Files.write(folder.resolve(e.getKey()), e.getValue());
            }
            OnnxModel.load(folder.resolve("model.onnx")); // every base itself is valid
        }
        return bases;
    }

    private Base saved(String name, OnnxModel model, SaveOptions options) throws IOException {
        Path file = tmp.resolve("bases/" + name + "/model.onnx");
        model.save(file, options);
        Map<String, byte[]> side = new LinkedHashMap<>();
        for (Path data : OnnxModel.externalDataFiles(file)) {
            side.put(data.getFileName().toString(), Files.readAllBytes(data));
        }
        return new Base(name, ModelProto.parseFrom(Files.readAllBytes(file)), side, true);
    }

    /** Every op the constant folder knows, as torch writes them around a Reshape, on a fixed-shape input. */
    static OnnxModel shapeArithmetic() {
        Graph g = new Graph("shape_arithmetic");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 3, 4));
        Value shape = g.op("Shape", "/Shape", x);
        Value zero = g.addNode("Constant", "/Constant", List.of(), 1).setAttr("value", TensorData.scalar(0L)).output(0);
        Value batch = g.op("Gather", "/Gather", List.of(shape, zero), Map.of("axis", 0L));
        Value batch1 = g.op("Unsqueeze", "/Unsqueeze", batch, g.addInitializer("axes0", TensorData.vector(0)));
        Value newShape = g.op("Concat", "/Concat", List.of(batch1, g.addInitializer("minus1", TensorData.vector(-1))),
                Map.of("axis", 0L));
        Value flat = g.op("Reshape", "/Reshape", x, newShape);
        Value sliced = g.op("Slice", "/Slice", flat, g.addInitializer("starts", TensorData.vector(1)),
                g.addInitializer("ends", TensorData.vector(11)), g.addInitializer("axes1", TensorData.vector(1)),
                g.addInitializer("steps", TensorData.vector(2)));
        Value scale = g.op("Sqrt", "/Sqrt", g.op("Cast", "/Cast", List.of(batch), Map.of("to", (long) DataType.FLOAT.onnxCode())));
        Value scaled = g.op("Div", "/Div", sliced, scale);
        Value outShape = g.addInitializer("out_shape", TensorData.vector(2, 5));
        Value ones = g.op("ConstantOfShape", "/ConstantOfShape", List.of(outShape),
                Map.of("value", TensorData.ofFloats(new long[] {1}, 1f)));
        Value half = g.addNode("Constant", "/Constant_1", List.of(), 1).setAttr("value_float", 0.5f).output(0);
        Value same = g.op("Equal", "/Equal", batch, batch);
        Value chosen = g.op("Where", "/Where", same, g.op("Mul", "/Mul", scaled, ones), g.op("Expand", "/Expand", half, outShape));
        Value back = g.op("Squeeze", "/Squeeze", g.op("Unsqueeze", "/Unsqueeze_1", chosen, g.addInitializer("axes_front",
                TensorData.vector(0))), g.addInitializer("axes_front_1", TensorData.vector(0)));
        Value y = g.op("Add", "/Add", back, g.op("Sub", "/Sub", half, half));
        y.setTypeAndShape(DataType.FLOAT, Shape.of(2, 5));
        g.rename(y, "y");
        g.addOutput(y);
        return new OnnxModel(g, 17);
    }

    // ---- mutations ----

    private static long hostile(Random r) {
        return r.nextInt(4) == 0 ? r.nextLong() : HOSTILE_NUMBERS[r.nextInt(HOSTILE_NUMBERS.length)];
    }

    private static String hostileText(Random r, List<String> names) {
        return switch (r.nextInt(9)) {
            case 0 -> "";
            case 1 -> "ghost";
            case 2 -> "x".repeat(1 << 16 + r.nextInt(5));
            case 3 -> "a\nb\u0000c";
            case 4 -> "../outside.data";
            default -> names.isEmpty() ? "ghost" : names.get(r.nextInt(names.size()));
        };
    }

    /** Every value name the graph mentions. */
    private static List<String> names(GraphProto.Builder g) {
        List<String> names = new ArrayList<>();
        g.getInputList().forEach(v -> names.add(v.getName()));
        g.getInitializerList().forEach(t -> names.add(t.getName()));
        g.getNodeList().forEach(n -> names.addAll(n.getOutputList()));
        return names;
    }

    private static int pick(Random r, int count) {
        return count == 0 ? -1 : r.nextInt(count);
    }

    private static void mutateShape(TensorShapeProto.Builder shape, Random r) {
        int choice = r.nextInt(4);
        if (choice == 0 || shape.getDimCount() == 0) {
            shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(hostile(r)));
        } else if (choice == 1) {
            shape.removeDim(r.nextInt(shape.getDimCount()));
        } else if (choice == 2) {
            shape.getDimBuilder(r.nextInt(shape.getDimCount())).setDimParam(r.nextBoolean() ? "" : "n".repeat(1 << 17));
        } else {
            for (int i = 0; i < shape.getDimCount(); i++) {
                shape.getDimBuilder(i).setDimValue(1L << 40);
            }
        }
    }

    private static ValueInfoProto.Builder randomValueInfo(GraphProto.Builder g, Random r) {
        int inputs = g.getInputCount();
        int outputs = g.getOutputCount();
        int infos = g.getValueInfoCount();
        int i = pick(r, inputs + outputs + infos);
        if (i < 0) {
            return null;
        }
        return i < inputs ? g.getInputBuilder(i) : i < inputs + outputs ? g.getOutputBuilder(i - inputs)
                : g.getValueInfoBuilder(i - inputs - outputs);
    }

    private static TensorProto.Builder randomTensor(ModelProto.Builder b, Random r) {
        GraphProto.Builder g = b.getGraphBuilder();
        List<TensorProto.Builder> tensors = new ArrayList<>(g.getInitializerBuilderList());
        for (NodeProto.Builder n : g.getNodeBuilderList()) {
            for (AttributeProto.Builder a : n.getAttributeBuilderList()) {
                if (a.hasT()) {
                    tensors.add(a.getTBuilder());
                }
            }
        }
        return tensors.isEmpty() ? null : tensors.get(r.nextInt(tensors.size()));
    }

    private static void setEntry(TensorProto.Builder t, String key, String value) {
        for (int i = 0; i < t.getExternalDataCount(); i++) {
            if (t.getExternalData(i).getKey().equals(key)) {
                t.setExternalData(i, StringStringEntryProto.newBuilder().setKey(key).setValue(value));
                return;
            }
        }
        t.addExternalData(StringStringEntryProto.newBuilder().setKey(key).setValue(value));
    }

    private List<Mutation> mutations() {
        List<Mutation> list = new ArrayList<>();
        list.add(new Mutation("tensor-dims", (b, r) -> {
            TensorProto.Builder t = randomTensor(b, r);
            if (t == null) {
                return;
            }
            switch (r.nextInt(3)) {
                case 0 -> t.addDims(hostile(r));
                case 1 -> t.clearDims();
                default -> {
                    if (t.getDimsCount() > 0) {
                        t.setDims(r.nextInt(t.getDimsCount()), hostile(r));
                    } else {
                        t.addDims(1L << 40).addDims(1L << 40);
                    }
                }
            }
        }));
        list.add(new Mutation("value-shape", (b, r) -> {
            ValueInfoProto.Builder vi = randomValueInfo(b.getGraphBuilder(), r);
            if (vi != null) {
                mutateShape(vi.getTypeBuilder().getTensorTypeBuilder().getShapeBuilder(), r);
            }
        }));
        list.add(new Mutation("value-type", (b, r) -> {
            ValueInfoProto.Builder vi = randomValueInfo(b.getGraphBuilder(), r);
            if (vi != null) {
                vi.getTypeBuilder().getTensorTypeBuilder().setElemType((int) hostile(r) % 40);
            }
        }));
        list.add(new Mutation("node-input", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            if (n < 0) {
                return;
            }
            NodeProto.Builder node = g.getNodeBuilder(n);
            String name = switch (r.nextInt(4)) {
                case 0 -> ""; // ONNX's omitted input
                case 1 -> node.getOutputCount() > 0 ? node.getOutput(0) : "self"; // a self loop
                case 2 -> { // a later node's output: a cycle
                    NodeProto later = g.getNode(n + r.nextInt(g.getNodeCount() - n));
                    yield later.getOutputCount() > 0 ? later.getOutput(0) : "later";
                }
                default -> hostileText(r, names(g));
            };
            if (node.getInputCount() == 0 || r.nextInt(4) == 0) {
                node.addInput(name);
            } else {
                node.setInput(r.nextInt(node.getInputCount()), name);
            }
        }));
        list.add(new Mutation("drop-inputs", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            if (n >= 0) {
                NodeProto.Builder node = g.getNodeBuilder(n);
                List<String> kept = new ArrayList<>(node.getInputList().subList(0, r.nextInt(node.getInputCount() + 1)));
                node.clearInput().addAllInput(kept);
            }
        }));
        list.add(new Mutation("node-output", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            if (n < 0) {
                return;
            }
            NodeProto.Builder node = g.getNodeBuilder(n);
            switch (r.nextInt(4)) {
                case 0 -> node.clearOutput();
                case 1 -> node.addOutput(hostileText(r, names(g)));
                default -> {
                    if (node.getOutputCount() > 0) {
                        node.setOutput(r.nextInt(node.getOutputCount()), hostileText(r, names(g)));
                    }
                }
            }
        }));
        list.add(new Mutation("external-data", (b, r) -> {
            TensorProto.Builder t = randomTensor(b, r);
            if (t == null) {
                return;
            }
            if (t.getDataLocation() != TensorProto.DataLocation.EXTERNAL && r.nextInt(3) == 0) {
                t.setDataLocation(TensorProto.DataLocation.EXTERNAL).clearRawData();
                setEntry(t, "location", "model.onnx");
            }
            String location = switch (r.nextInt(9)) {
                case 0 -> "../outside.data";
                case 1 -> "/etc/hostname";
                case 2 -> tmp.resolve("case/model.onnx").toAbsolutePath().toString();
                case 3 -> "";
                case 4 -> ".";
                case 5 -> "sub/../../x.data";
                case 6 -> "a\u0000b";
                case 7 -> "L".repeat(1 << 20);
                default -> "missing.data";
            };
            switch (r.nextInt(4)) {
                case 0 -> setEntry(t, "location", location);
                case 1 -> setEntry(t, "offset", r.nextInt(5) == 0 ? "abc" : Long.toString(hostile(r)));
                case 2 -> setEntry(t, "length", r.nextInt(5) == 0 ? "" : Long.toString(hostile(r)));
                default -> t.clearExternalData();
            }
        }));
        list.add(new Mutation("raw-data", (b, r) -> {
            TensorProto.Builder t = randomTensor(b, r);
            if (t == null) {
                return;
            }
            ByteString raw = t.getRawData();
            switch (r.nextInt(4)) {
                case 0 -> t.setRawData(raw.substring(0, r.nextInt(raw.size() + 1)));
                case 1 -> t.setRawData(raw.concat(ByteString.copyFrom(new byte[1 + r.nextInt(9)])));
                case 2 -> t.clearRawData();
                default -> t.clearRawData().addFloatData(1f).addInt64Data(2);
            }
        }));
        list.add(new Mutation("data-type", (b, r) -> {
            TensorProto.Builder t = randomTensor(b, r);
            if (t != null) {
                int[] types = {0, 2, 7, 8, 9, 10, 14, 15, 16, 17, 19, 21, 99, -1};
                t.setDataType(types[r.nextInt(types.length)]);
            }
        }));
        list.add(new Mutation("no-outputs", (b, r) -> b.getGraphBuilder().clearOutput()));
        list.add(new Mutation("output-name", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int o = pick(r, g.getOutputCount());
            if (o >= 0) {
                g.getOutputBuilder(o).setName(hostileText(r, names(g)));
            }
        }));
        list.add(new Mutation("attribute", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            if (n < 0) {
                return;
            }
            NodeProto.Builder node = g.getNodeBuilder(n);
            int a = pick(r, node.getAttributeCount());
            String[] keys = {"axis", "to", "axes", "value", "start", "end", "allowzero", "perm", "keepdims"};
            AttributeProto.Builder attr = a < 0 || r.nextInt(3) == 0
                    ? node.addAttributeBuilder().setName(keys[r.nextInt(keys.length)]) : node.getAttributeBuilder(a);
            switch (r.nextInt(5)) {
                case 0 -> attr.setType(AttributeProto.AttributeType.INT).setI(hostile(r));
                case 1 -> attr.setType(AttributeProto.AttributeType.INTS).clearInts().addInts(hostile(r)).addInts(hostile(r));
                case 2 -> attr.setType(AttributeProto.AttributeType.FLOAT).setF(Float.NaN);
                case 3 -> attr.setType(AttributeProto.AttributeType.TENSOR).setT(TensorProto.newBuilder()
                        .setDataType(r.nextBoolean() ? 7 : 1).addDims(hostile(r)).setRawData(ByteString.copyFrom(new byte[8])));
                default -> {
                    AttributeProto.AttributeType type = AttributeProto.AttributeType.forNumber(r.nextInt(15));
                    attr.setType(type == null ? AttributeProto.AttributeType.UNDEFINED : type);
                }
            }
        }));
        list.add(new Mutation("op-type", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            String[] ops = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Add", "Sub", "Mul", "Div",
                "Sqrt", "Equal", "Where", "ConstantOfShape", "Expand", "Reshape", "Constant", "Identity", "Dropout",
                "NoSuchOp", ""};
            if (n >= 0) {
                g.getNodeBuilder(n).setOpType(ops[r.nextInt(ops.length)]);
                if (r.nextInt(4) == 0) {
                    g.getNodeBuilder(n).setDomain(r.nextBoolean() ? "com.example" : "ai.onnx");
                }
            }
        }));
        list.add(new Mutation("drop-initializer", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int i = pick(r, g.getInitializerCount());
            if (i >= 0) {
                g.removeInitializer(i);
            }
        }));
        list.add(new Mutation("duplicate", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            switch (r.nextInt(3)) {
                case 0 -> {
                    if (g.getInitializerCount() > 0) {
                        g.addInitializer(g.getInitializer(r.nextInt(g.getInitializerCount())));
                    }
                }
                case 1 -> {
                    if (g.getInputCount() > 0) {
                        g.addInput(g.getInput(r.nextInt(g.getInputCount())));
                    }
                }
                default -> {
                    if (g.getNodeCount() > 0) {
                        g.addNode(g.getNode(r.nextInt(g.getNodeCount())));
                    }
                }
            }
        }));
        list.add(new Mutation("drop-node", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            if (n >= 0) {
                g.removeNode(n);
            }
        }));
        list.add(new Mutation("drop-input", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int i = pick(r, g.getInputCount());
            if (i >= 0) {
                g.removeInput(i);
            }
        }));
        list.add(new Mutation("model-header", (b, r) -> {
            switch (r.nextInt(4)) {
                case 0 -> b.setIrVersion(hostile(r));
                case 1 -> b.clearOpsetImport();
                case 2 -> b.addOpsetImport(ai.onnx.proto.OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(hostile(r)));
                default -> b.addMetadataProps(StringStringEntryProto.newBuilder().setKey("k").setValue("v".repeat(1 << 16)));
            }
        }));
        list.add(new Mutation("huge-names", (b, r) -> {
            GraphProto.Builder g = b.getGraphBuilder();
            int n = pick(r, g.getNodeCount());
            if (n >= 0) {
                String huge = "h".repeat(r.nextInt(4) == 0 ? 1 << 20 : 1 << 16);
                g.getNodeBuilder(n).setName(huge);
                if (g.getNodeBuilder(n).getInputCount() > 0) {
                    g.getNodeBuilder(n).setInput(0, huge + "_input");
                }
            }
        }));
        list.add(new Mutation("sparse", (b, r) -> b.getGraphBuilder().addSparseInitializer(
                ai.onnx.proto.OnnxMl.SparseTensorProto.newBuilder())));
        return list;
    }

    /** The base's side files, sometimes cut short or with bytes flipped. */
    private static Map<String, byte[]> sideFiles(Base base, Random r) {
        if (base.sideFiles().isEmpty() || r.nextInt(8) != 0) {
            return base.sideFiles();
        }
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (var e : base.sideFiles().entrySet()) {
            byte[] bytes = e.getValue().clone();
            if (r.nextBoolean() && bytes.length > 0) {
                bytes = Arrays.copyOf(bytes, r.nextInt(bytes.length));
            } else if (bytes.length > 0) {
                bytes[r.nextInt(bytes.length)] ^= (byte) (1 + r.nextInt(255));
            }
            out.put(e.getKey(), bytes);
        }
        return out;
    }

    /** Flips bytes in place, or says how the caller should cut or splice; returns what it did. */
    private static String mutateBytes(byte[] bytes, Random r) {
        switch (r.nextInt(4)) {
            case 0 -> {
                return "cut";
            }
            case 1 -> {
                return "splice";
            }
            case 2 -> {
                int at = r.nextInt(bytes.length);
                int len = Math.min(bytes.length - at, 1 + r.nextInt(16));
                for (int i = 0; i < len; i++) {
                    bytes[at + i] = (byte) r.nextInt(256);
                }
                return "overwrite " + len + " at " + at;
            }
            default -> {
                int flips = 1 + r.nextInt(4);
                for (int i = 0; i < flips; i++) {
                    bytes[r.nextInt(bytes.length)] ^= (byte) (1 << r.nextInt(8));
                }
                return "flip " + flips + " bits";
            }
        }
    }

    /** A copy of a random span of the bytes inserted at a random place (repeated fields, wrong lengths). */
    private static byte[] splice(byte[] bytes, Random r) {
        int from = r.nextInt(bytes.length);
        int len = Math.min(bytes.length - from, 1 + r.nextInt(64));
        int at = r.nextInt(bytes.length + 1);
        byte[] out = new byte[bytes.length + len];
        System.arraycopy(bytes, 0, out, 0, at);
        System.arraycopy(bytes, from, out, at, len);
        System.arraycopy(bytes, at, out, at + len, bytes.length - at);
        return out;
    }
}
