package dev.sdrt.graphs;

import static dev.sdrt.graphs.io.Messages.quote;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.sdrt.graphs.io.AtomicFiles;
import dev.sdrt.graphs.io.Messages;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.TensorProtos;
import dev.sdrt.graphs.ir.Value;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongConsumer;
import java.util.regex.Pattern;

/**
 * An ONNX model: model-level metadata (IR version, opset imports, producer) around a mutable
 * {@link Graph}. Loads and saves ONNX files whose weights may live in external data files.
 *
 * <p>Loading and saving stay in one class (about 700 lines) because they are two halves of one
 * file layout: what the loader accepts (data file names inside the folder, offsets, the content-named
 * data file) is what the one-unit save writes and later removes, and keeping them side by side is
 * what keeps the two in step.
 */
public final class OnnxModel {
    /** Protobuf cannot serialize one message of 2 GiB or more. */
    static final long PROTOBUF_LIMIT = (1L << 31) - 1;

    private final Graph graph;
    private long irVersion = 8;
    /** Sorted, like metadata: a saved model's bytes must not depend on the order entries were added in. */
    private final Map<String, Long> opsetImports = new TreeMap<>();
    private String producerName = "sdrt";
    private String producerVersion = "";
    private final Map<String, String> metadata = new TreeMap<>();
    private final List<FunctionProto> functions = new ArrayList<>();
    private final List<Path> externalDataFiles = new ArrayList<>();

    public OnnxModel(Graph graph, long defaultOpset) {
        this.graph = graph;
        opsetImports.put("", defaultOpset);
    }

    private OnnxModel(Graph graph) {
        this.graph = graph;
    }

    public Graph graph() {
        return graph;
    }

    public long irVersion() {
        return irVersion;
    }

    public void setIrVersion(long irVersion) {
        this.irVersion = irVersion;
    }

    /** Domain ("" for the default ONNX domain) → opset version. */
    public Map<String, Long> opsetImports() {
        return opsetImports;
    }

    public long opset() {
        return opsetImports.getOrDefault("", opsetImports.getOrDefault("ai.onnx", 0L));
    }

    public String producerName() {
        return producerName;
    }

    public void setProducer(String name, String version) {
        this.producerName = name;
        this.producerVersion = version;
    }

    /** metadata_props: free-form key/value pairs kept with the model. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** External data files the loaded model's weights were read from (empty for built or inline models). */
    public List<Path> externalDataFiles() {
        return List.copyOf(externalDataFiles);
    }

    // ======================= loading =======================

    /** Loads an ONNX file; external data is resolved relative to the file's folder and memory-mapped. */
    public static OnnxModel load(Path path) throws IOException {
        ModelProto proto = readProto(path);
        Path folder = path.toAbsolutePath().getParent();
        try {
            return fromProto(proto, folder, path);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new OnnxFormatException("invalid ONNX model " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * The external data files the model in {@code modelFile} points to, resolved and checked as
     * {@link #load} does, in first-use order; empty when every weight is inline. For tools that
     * copy, hash or report a model's files: the names are not fixed (models sdrt saves name their
     * data file after its contents, {@code unet.onnx.<hash>.data}; other models may use any name
     * inside their folder, e.g. the {@code unet.onnx.data} of earlier sdrt versions).
     */
    public static List<Path> externalDataFiles(Path modelFile) throws IOException {
        ModelProto proto = readProto(modelFile);
        ExternalDataReader external = new ExternalDataReader(modelFile.toAbsolutePath().getParent());
        for (TensorProto t : proto.getGraph().getInitializerList()) {
            if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
                external.resolve(t);
            }
        }
        return external.filesRead();
    }

    private static ModelProto readProto(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "ONNX model file not found");
        }
        if (Files.isDirectory(path)) {
            throw new OnnxFormatException(path + " is a folder, not an ONNX file");
        }
        long size = Files.size(path);
        if (size >= PROTOBUF_LIMIT) {
            throw new OnnxFormatException(path + " is " + size + " bytes; an ONNX protobuf must stay under 2 GiB"
                    + " (models this large keep their weights in external data files)");
        }
        ModelProto proto;
        try (InputStream in = Files.newInputStream(path)) {
            CodedInputStream coded = CodedInputStream.newInstance(in);
            coded.setSizeLimit(Integer.MAX_VALUE);
            coded.setRecursionLimit(1000);
            proto = ModelProto.parseFrom(coded);
        } catch (InvalidProtocolBufferException e) {
            throw new OnnxFormatException("malformed ONNX file " + path + ": " + Messages.cap(e.getMessage(), 200), e);
        }
        if (!proto.hasGraph()) {
            throw new OnnxFormatException("malformed ONNX file " + path + ": it holds no graph");
        }
        return proto;
    }

    private static OnnxModel fromProto(ModelProto proto, Path folder, Path path) throws IOException {
        GraphProto gp = proto.getGraph();
        if (gp.getSparseInitializerCount() > 0) {
            throw new OnnxFormatException(path + ": sparse initializers are not supported");
        }
        if (gp.getOutputCount() == 0) {
            throw new OnnxFormatException(path + ": the graph has no outputs, so it computes nothing"
                    + " (ONNX requires at least one)");
        }
        Graph graph = new Graph(gp.getName());
        OnnxModel model = new OnnxModel(graph);
        model.irVersion = proto.getIrVersion();
        for (OperatorSetIdProto op : proto.getOpsetImportList()) {
            model.opsetImports.put(op.getDomain(), op.getVersion());
        }
        model.producerName = proto.getProducerName();
        model.producerVersion = proto.getProducerVersion();
        for (StringStringEntryProto e : proto.getMetadataPropsList()) {
            model.metadata.put(e.getKey(), e.getValue());
        }
        model.functions.addAll(proto.getFunctionsList());

        ExternalDataReader external = new ExternalDataReader(folder);
        for (TensorProto t : gp.getInitializerList()) {
            if (t.getName().isEmpty()) {
                throw new OnnxFormatException(path + ": an initializer has no name");
            }
            TensorData data = t.getDataLocation() == TensorProto.DataLocation.EXTERNAL
                    ? external.read(t)
                    : TensorProtos.fromProto(t, "initializer " + quote(t.getName()));
            graph.addInitializer(t.getName(), data);
        }
        for (ValueInfoProto vi : gp.getInputList()) {
            if (vi.getName().isEmpty()) {
                throw new OnnxFormatException(path + ": a graph input has no name");
            }
            Value existing = graph.value(vi.getName());
            if (existing != null && existing.isConstant()) {
                continue; // IR < 4 lists initializers among the inputs
            }
            graph.addInput(vi.getName(), typeOf(vi), shapeOf(vi));
        }
        for (NodeProto np : gp.getNodeList()) {
            // An empty name is ONNX's omitted optional input; Node keeps it as null.
            List<Value> ins = new ArrayList<>();
            for (String in : np.getInputList()) {
                ins.add(in.isEmpty() ? null : graph.valueOrCreate(in));
            }
            List<Value> outs = new ArrayList<>();
            for (String out : np.getOutputList()) {
                Value v = out.isEmpty() ? graph.newValue(np.getName() + "_unused") : graph.valueOrCreate(out);
                if (v.isGraphInput()) {
                    throw new OnnxFormatException(path + ": node " + quote(np.getName()) + " writes " + quote(out)
                            + ", which is a graph input");
                }
                outs.add(v);
            }
            Node node = graph.addNode(np.getOpType(), np.getDomain(), np.getName(), ins, outs);
            for (AttributeProto a : np.getAttributeList()) {
                checkTensors(node, a);
                node.setAttr(a);
            }
        }
        model.externalDataFiles.addAll(external.filesRead());
        linkSubgraphReads(graph);
        for (ValueInfoProto vi : gp.getValueInfoList()) {
            Value v = graph.value(vi.getName());
            if (v != null && !v.isConstant()) {
                v.setTypeAndShape(typeOf(vi), shapeOf(vi));
            }
        }
        for (ValueInfoProto vi : gp.getOutputList()) {
            Value v = graph.value(vi.getName());
            if (v == null || vi.getName().isEmpty()) {
                throw new OnnxFormatException(path + ": graph output " + quote(vi.getName()) + " is produced by no node");
            }
            if (!v.isConstant()) {
                v.setTypeAndShape(typeOf(vi), shapeOf(vi));
            }
            graph.addOutput(v);
        }
        // ONNX requires topological order; exporters that write nodes out of order still load, a cycle does not
        graph.toposort();
        String problem = model.structureProblem();
        if (problem != null) {
            throw new OnnxFormatException(path + ": " + problem);
        }
        return model;
    }

    /** Tensor-valued attributes (Constant's value) are read by passes: a malformed one is refused here, named. */
    private static void checkTensors(Node node, AttributeProto a) {
        String label = "attribute " + quote(a.getName()) + " of node " + quote(node.name());
        if (a.hasT()) {
            TensorProtos.fromProto(a.getT(), label);
        }
        for (TensorProto t : a.getTensorsList()) {
            TensorProtos.fromProto(t, label);
        }
    }

    /** Values read inside If/Loop/Scan bodies are recorded so cleanup keeps their producers. */
    private static void linkSubgraphReads(Graph graph) {
        for (Node node : graph.nodes()) {
            Set<String> names = new HashSet<>();
            for (AttributeProto a : node.attributes().values()) {
                if (a.hasG()) {
                    collectOuterReads(a.getG(), names);
                }
                for (GraphProto g : a.getGraphsList()) {
                    collectOuterReads(g, names);
                }
            }
            for (String n : names) {
                Value v = graph.value(n);
                if (v != null) {
                    graph.addImplicitInput(node, v);
                }
            }
        }
    }

    private static void collectOuterReads(GraphProto g, Set<String> out) {
        Set<String> defined = new HashSet<>();
        g.getInputList().forEach(vi -> defined.add(vi.getName()));
        g.getInitializerList().forEach(t -> defined.add(t.getName()));
        for (NodeProto n : g.getNodeList()) {
            defined.addAll(n.getOutputList());
        }
        for (NodeProto n : g.getNodeList()) {
            for (String in : n.getInputList()) {
                if (!in.isEmpty() && !defined.contains(in)) {
                    out.add(in);
                }
            }
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG()) {
                    collectOuterReads(a.getG(), out);
                }
            }
        }
        g.getOutputList().forEach(vi -> {
            if (!defined.contains(vi.getName())) {
                out.add(vi.getName());
            }
        });
    }

    private static DataType typeOf(ValueInfoProto vi) {
        if (!vi.hasType() || !vi.getType().hasTensorType() || vi.getType().getTensorType().getElemType() == 0) {
            return null;
        }
        try {
            return DataType.fromOnnx(vi.getType().getTensorType().getElemType());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("value " + quote(vi.getName()) + ": " + e.getMessage(), e);
        }
    }

    private static Shape shapeOf(ValueInfoProto vi) {
        if (!vi.hasType() || !vi.getType().hasTensorType() || !vi.getType().getTensorType().hasShape()) {
            return null;
        }
        List<Dim> dims = new ArrayList<>();
        for (TensorShapeProto.Dimension d : vi.getType().getTensorType().getShape().getDimList()) {
            if (d.hasDimValue()) {
                if (d.getDimValue() < 0) {
                    throw new IllegalArgumentException("value " + quote(vi.getName()) + " has a negative dimension "
                            + d.getDimValue());
                }
                dims.add(Dim.of(d.getDimValue()));
            } else if (d.hasDimParam() && !d.getDimParam().isEmpty()) {
                dims.add(Dim.symbolic(d.getDimParam()));
            } else {
                dims.add(Dim.UNKNOWN);
            }
        }
        Shape shape = Shape.of(dims);
        try {
            shape.numElements();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("value " + quote(vi.getName()) + " has shape " + Messages.cap(shape.toString(), 200)
                    + ", more than 2^63 elements");
        }
        return shape;
    }

    // ======================= checking =======================

    /**
     * What makes the graph not a model ONNX Runtime could run, or null: no outputs, a value read but
     * never defined (its producer removed and not rewired), or nodes out of topological order.
     */
    private String structureProblem() {
        if (graph.outputs().isEmpty()) {
            return "the graph has no outputs, so it computes nothing (ONNX requires at least one)";
        }
        Set<Value> inputs = Collections.newSetFromMap(new IdentityHashMap<>());
        inputs.addAll(graph.inputs());
        Map<Node, Integer> position = new IdentityHashMap<>();
        for (Node n : graph.nodes()) {
            position.put(n, position.size());
        }
        for (Node n : graph.nodes()) {
            List<Value> reads = new ArrayList<>(n.inputs());
            reads.addAll(n.implicitInputs());
            for (Value v : reads) {
                String problem = v == null ? null : definitionProblem(v, inputs, position, position.get(n));
                if (problem != null) {
                    return "node " + quote(n.name()) + " reads " + quote(v.name()) + ", which " + problem;
                }
            }
        }
        for (Value v : graph.outputs()) {
            String problem = definitionProblem(v, inputs, position, position.size());
            if (problem != null) {
                return "graph output " + quote(v.name()) + " " + problem;
            }
        }
        for (Value v : graph.values().values()) {
            if (v.name().isEmpty()) {
                return "a value has an empty name, which ONNX reads as an omitted input";
            }
        }
        return null;
    }

    private static String definitionProblem(Value v, Set<Value> inputs, Map<Node, Integer> position, int readAt) {
        if (v.isConstant() || inputs.contains(v)) {
            return null;
        }
        Integer producedAt = v.producer() == null ? null : position.get(v.producer());
        if (producedAt == null) {
            return "is neither a graph input, an initializer nor a node output";
        }
        return producedAt < readAt ? null : "node " + quote(v.producer().name()) + " produces later (nodes are not in"
                + " topological order; call Graph.toposort after inserting nodes)";
    }

    // ======================= saving =======================

    /** Saves with default options: weights go to a side file when the model is large. */
    public void save(Path path) throws IOException {
        save(path, SaveOptions.defaults());
    }

    /**
     * Saves the model so that {@code path} holds either the old model or the new one, complete,
     * whenever the process stops. A model and its external data are one unit: the data goes to a
     * file named after its contents ({@code NAME.<hash>.data}, written and flushed first), the model
     * that points at it is written to a temp file, checked, flushed and renamed over {@code path}
     * last (the commit), and only then are the data files of the old model removed. Temp files
     * left by a save that was killed are removed first. A model whose structure is broken, or that
     * the ONNX checker rejects (with {@link SaveOptions#check()}), is refused with an
     * {@link OnnxFormatException}, and the old files stay as they were.
     */
    public void save(Path path, SaveOptions options) throws IOException {
        Path target = path.toAbsolutePath().normalize();
        String problem = structureProblem();
        if (problem != null) {
            throw new OnnxFormatException("not saving " + target + ": " + problem);
        }
        List<Value> initializers = graph.initializers();
        long totalBytes = initializers.stream().mapToLong(v -> v.constant().byteSize()).sum();
        boolean useExternal = switch (options.externalData()) {
            case ALWAYS -> true;
            case NEVER -> false;
            case AUTO -> totalBytes > options.autoExternalBytes();
        };
        if (!useExternal && totalBytes >= PROTOBUF_LIMIT) {
            throw new IOException("model " + target.getFileName() + " has " + totalBytes
                    + " bytes of weights; over 2 GiB they must be saved as external data");
        }
        Files.createDirectories(target.getParent());
        try (AtomicFiles.TargetLock lock = AtomicFiles.lock(target)) {
            AtomicFiles.deleteStaleTemps(target);
            Path dataFile = replaceTarget(target, useExternal, options);
            deleteOldDataFiles(target, dataFile);
        }
    }

    /**
     * Writes the data file and the model and commits them; returns the data file the new model
     * points to (null when all weights are inline). Called holding the target's lock.
     */
    private Path replaceTarget(Path target, boolean useExternal, SaveOptions options) throws IOException {
        Path folder = target.getParent();
        Path temp = null;
        Path dataFile = null;
        boolean dataFileIsNew = false;
        boolean committed = false;
        try {
            Map<Value, long[]> placement = new LinkedHashMap<>();
            if (useExternal) {
                temp = AtomicFiles.tempBeside(target);
                String contentHash = writeExternalData(temp, graph.initializers(), options, placement);
                if (placement.isEmpty()) {
                    Files.delete(temp); // every tensor is small enough to stay inline
                } else {
                    dataFile = folder.resolve(target.getFileName() + "." + contentHash + ".data");
                    // An existing file of this name holds these very bytes: replacing it changes nothing for its readers.
                    dataFileIsNew = !Files.exists(dataFile);
                    AtomicFiles.replace(temp, dataFile);
                }
                temp = null;
            }
            ModelProto proto = toProto(placement, dataFile == null ? "" : dataFile.getFileName().toString(),
                    options.progress(), true);
            if (proto.getSerializedSize() < 0 || proto.getSerializedSize() >= PROTOBUF_LIMIT) {
                throw new IOException("model " + target.getFileName() + " does not fit in one 2 GiB protobuf; save with external data");
            }
            temp = AtomicFiles.tempBeside(target);
            try (OutputStream out = Files.newOutputStream(temp)) {
                proto.writeTo(out);
            }
            AtomicFiles.sync(temp);
            // the data file's name reaches the disk before the model that needs it can
            AtomicFiles.syncFolder(folder);
            if (options.check()) {
                String rejection = OnnxChecker.rejection(temp);
                if (rejection != null) {
                    throw new OnnxFormatException("not saving " + target + ": the ONNX checker rejects the model: " + rejection);
                }
            }
            AtomicFiles.replace(temp, target); // the commit
            temp = null;
            committed = true;
            AtomicFiles.syncFolder(folder);
            return dataFile;
        } finally {
            // Best effort: a failed save reports its own error; what stays here is removed by the next save.
            try {
                if (temp != null) {
                    Files.deleteIfExists(temp);
                }
                if (!committed && dataFileIsNew) {
                    Files.deleteIfExists(dataFile);
                }
            } catch (IOException ignored) {
                // the save's own exception is the one to report
            }
        }
    }

    /** NAME.data (what earlier sdrt versions wrote) or NAME.<16 hex digits>.data, for target NAME. */
    private static boolean isDataFileOf(Path target, String fileName) {
        String name = target.getFileName().toString();
        return fileName.equals(name + ".data") || fileName.startsWith(name + ".")
                && DATA_FILE_HASH.matcher(fileName.substring(name.length() + 1)).matches();
    }

    private static final Pattern DATA_FILE_HASH = Pattern.compile("[0-9a-f]{16}\\.data");

    /**
     * Removes the target's data files other than {@code current}: the old model's, and any that a
     * killed save wrote but never committed. Files a model did not name after its target are left
     * alone: another model may point to them.
     */
    private static void deleteOldDataFiles(Path target, Path current) throws IOException {
        List<Path> old = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(target.getParent())) {
            for (Path entry : entries) {
                if (isDataFileOf(target, entry.getFileName().toString()) && !entry.equals(current)) {
                    old.add(entry);
                }
            }
        }
        for (Path file : old) {
            Files.deleteIfExists(file);
        }
    }

    /**
     * Writes each tensor above the size threshold, aligned, recording [offset, length] per value;
     * returns the first 16 hex digits of the SHA-256 of the file's bytes (padding included).
     */
    private String writeExternalData(Path file, List<Value> initializers, SaveOptions options, Map<Value, long[]> placement)
            throws IOException {
        LongConsumer progress = options.progress();
        MessageDigest digest = sha256();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            long offset = 0;
            for (Value v : initializers) {
                TensorData data = v.constant();
                if (data.byteSize() < options.inlineBelowBytes()) {
                    continue;
                }
                long aligned = (offset + EXTERNAL_ALIGNMENT - 1) / EXTERNAL_ALIGNMENT * EXTERNAL_ALIGNMENT;
                digest.update(new byte[(int) (aligned - offset)]);
                ByteBuffer bytes = data.bytes();
                digest.update(bytes.duplicate());
                long length = bytes.remaining();
                long pos = aligned;
                while (bytes.hasRemaining()) {
                    pos += ch.write(bytes, pos);
                }
                placement.put(v, new long[] {aligned, length});
                offset = aligned + length;
                if (progress != null) {
                    progress.accept(length);
                }
            }
            ch.force(true);
        }
        return HexFormat.of().formatHex(digest.digest(), 0, 8);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    /** Page alignment lets ONNX Runtime and TensorRT map external tensors directly. */
    static final long EXTERNAL_ALIGNMENT = 4096;

    private ModelProto toProto(Map<Value, long[]> placement, String dataFileName, LongConsumer progress,
            boolean withInitializers) {
        GraphProto.Builder g = GraphProto.newBuilder().setName(graph.name() == null ? "" : graph.name());
        for (Value v : graph.inputs()) {
            g.addInput(valueInfo(v));
        }
        for (Value v : graph.outputs()) {
            g.addOutput(valueInfo(v));
        }
        for (Value v : withInitializers ? graph.initializers() : List.<Value>of()) {
            TensorData data = v.constant();
            long[] place = placement.get(v);
            if (place != null) {
                TensorProto.Builder t = TensorProtos.header(data, v.name())
                        .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                        .addExternalData(entry("location", dataFileName))
                        .addExternalData(entry("offset", Long.toString(place[0])))
                        .addExternalData(entry("length", Long.toString(place[1])));
                g.addInitializer(t);
            } else {
                g.addInitializer(TensorProtos.toInlineProto(data, v.name()));
                if (progress != null && placement.isEmpty()) {
                    progress.accept(data.byteSize());
                }
            }
        }
        for (Node n : graph.nodes()) {
            NodeProto.Builder nb = NodeProto.newBuilder().setName(n.name()).setOpType(n.opType()).setDomain(n.domain());
            for (Value in : n.inputs()) {
                nb.addInput(in == null ? "" : in.name());
            }
            for (Value out : n.outputs()) {
                nb.addOutput(out.name());
            }
            nb.addAllAttribute(n.attributes().values());
            g.addNode(nb);
        }
        for (Value v : graph.values().values()) {
            if (!v.isConstant() && !v.isGraphInput() && !v.isGraphOutput() && v.producer() != null && v.type() != null) {
                g.addValueInfo(valueInfo(v));
            }
        }
        ModelProto.Builder m = ModelProto.newBuilder()
                .setIrVersion(irVersion)
                .setProducerName(producerName == null ? "" : producerName)
                .setProducerVersion(producerVersion == null ? "" : producerVersion)
                .setGraph(g);
        opsetImports.forEach((domain, version) -> m.addOpsetImport(
                OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(version)));
        metadata.forEach((k, val) -> m.addMetadataProps(StringStringEntryProto.newBuilder().setKey(k).setValue(val)));
        m.addAllFunctions(functions);
        return m.build();
    }

    private static StringStringEntryProto entry(String key, String value) {
        return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
    }

    private static ValueInfoProto valueInfo(Value v) {
        ValueInfoProto.Builder vi = ValueInfoProto.newBuilder().setName(v.name());
        if (v.type() != null) {
            TypeProto.Tensor.Builder tt = TypeProto.Tensor.newBuilder().setElemType(v.type().onnxCode());
            Shape shape = v.shape();
            if (shape != null) {
                TensorShapeProto.Builder sb = TensorShapeProto.newBuilder();
                for (Dim d : shape.dims()) {
                    TensorShapeProto.Dimension.Builder db = TensorShapeProto.Dimension.newBuilder();
                    if (d.isFixed()) {
                        db.setDimValue(d.value());
                    } else if (d.param() != null) {
                        db.setDimParam(d.param());
                    }
                    sb.addDim(db);
                }
                tt.setShape(sb);
            }
            vi.setType(TypeProto.newBuilder().setTensorType(tt));
        }
        return vi.build();
    }

    /** The model as a protobuf with all weights inline (for small models, checkers and tests). */
    public ModelProto toInlineProto() {
        return toProto(Map.of(), "", null, true);
    }

    /**
     * The model for shape inference: initializers with more than {@code maxInlineElements} elements
     * become typed graph inputs without data (inference needs only their shapes), small ones, which
     * may hold shape arithmetic, stay inline.
     */
    ModelProto toInlineProtoForInference(long maxInlineElements) {
        ModelProto.Builder m = ModelProto.newBuilder(toProtoWithoutInitializers());
        GraphProto.Builder g = m.getGraphBuilder();
        for (Value v : graph.initializers()) {
            TensorData data = v.constant();
            if (data.numElements() <= maxInlineElements) {
                g.addInitializer(TensorProtos.toInlineProto(data, v.name()));
            } else {
                g.addInput(valueInfo(v));
            }
        }
        return m.build();
    }

    private ModelProto toProtoWithoutInitializers() {
        return toProto(Map.of(), "", null, false);
    }
}
