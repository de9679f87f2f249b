package dev.sdrt.graphs;

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
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * An ONNX model: model-level metadata (IR version, opset imports, producer) around a mutable
 * {@link Graph}. Loads and saves ONNX files whose weights may live in external data files.
 */
public final class OnnxModel {
    /** Protobuf cannot serialize one message of 2 GiB or more. */
    static final long PROTOBUF_LIMIT = (1L << 31) - 1;

    private final Graph graph;
    private long irVersion = 8;
    private final Map<String, Long> opsetImports = new LinkedHashMap<>();
    private String producerName = "sdrt";
    private String producerVersion = "";
    private final Map<String, String> metadata = new LinkedHashMap<>();
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
            throw new OnnxFormatException("malformed ONNX file " + path + ": " + e.getMessage(), e);
        }
        if (!proto.hasGraph()) {
            throw new OnnxFormatException("malformed ONNX file " + path + ": it holds no graph");
        }
        Path folder = path.toAbsolutePath().getParent();
        try {
            return fromProto(proto, folder, path);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new OnnxFormatException("invalid ONNX model " + path + ": " + e.getMessage(), e);
        }
    }

    private static OnnxModel fromProto(ModelProto proto, Path folder, Path path) throws IOException {
        GraphProto gp = proto.getGraph();
        if (gp.getSparseInitializerCount() > 0) {
            throw new OnnxFormatException(path + ": sparse initializers are not supported");
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
                    : TensorProtos.fromProto(t, t.getName());
            graph.addInitializer(t.getName(), data);
        }
        for (ValueInfoProto vi : gp.getInputList()) {
            Value existing = graph.value(vi.getName());
            if (existing != null && existing.isConstant()) {
                continue; // IR < 4 lists initializers among the inputs
            }
            graph.addInput(vi.getName(), typeOf(vi), shapeOf(vi));
        }
        for (NodeProto np : gp.getNodeList()) {
            List<Value> ins = new ArrayList<>();
            for (String in : np.getInputList()) {
                ins.add(in.isEmpty() ? null : graph.valueOrCreate(in));
            }
            List<Value> outs = new ArrayList<>();
            for (String out : np.getOutputList()) {
                outs.add(out.isEmpty() ? graph.newValue(np.getName() + "_unused") : graph.valueOrCreate(out));
            }
            Node node = graph.addNode(np.getOpType(), np.getDomain(), np.getName(), ins, outs);
            for (AttributeProto a : np.getAttributeList()) {
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
            if (v == null) {
                throw new OnnxFormatException(path + ": graph output '" + vi.getName() + "' is produced by no node");
            }
            if (!v.isConstant()) {
                v.setTypeAndShape(typeOf(vi), shapeOf(vi));
            }
            graph.addOutput(v);
        }
        for (Value v : graph.values().values()) {
            if (v.producer() == null && !v.isConstant() && !v.isGraphInput() && !v.consumers().isEmpty()) {
                throw new OnnxFormatException(path + ": value '" + v.name() + "' is read by node "
                        + v.consumers().get(0).name() + " but is neither an input, an initializer nor a node output");
            }
        }
        return model;
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
        return DataType.fromOnnx(vi.getType().getTensorType().getElemType());
    }

    private static Shape shapeOf(ValueInfoProto vi) {
        if (!vi.hasType() || !vi.getType().hasTensorType() || !vi.getType().getTensorType().hasShape()) {
            return null;
        }
        List<Dim> dims = new ArrayList<>();
        for (TensorShapeProto.Dimension d : vi.getType().getTensorType().getShape().getDimList()) {
            if (d.hasDimValue()) {
                dims.add(Dim.of(d.getDimValue()));
            } else if (d.hasDimParam() && !d.getDimParam().isEmpty()) {
                dims.add(Dim.symbolic(d.getDimParam()));
            } else {
                dims.add(Dim.UNKNOWN);
            }
        }
        return Shape.of(dims);
    }

    // ======================= saving =======================

    /** Saves with default options: weights go to a side file when the model is large. */
    public void save(Path path) throws IOException {
        save(path, SaveOptions.defaults());
    }

    /**
     * Writes the model (and its external data file, if any) to temp files in the target folder and
     * moves them into place, so a failed save leaves no half-written model behind.
     */
    public void save(Path path, SaveOptions options) throws IOException {
        Path target = path.toAbsolutePath();
        Path folder = target.getParent();
        Files.createDirectories(folder);
        String dataFileName = target.getFileName() + ".data";
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
        Path dataTemp = null;
        Path modelTemp = AtomicFiles.tempBeside(target);
        try {
            Map<Value, long[]> placement = new LinkedHashMap<>();
            if (useExternal) {
                dataTemp = AtomicFiles.tempBeside(folder.resolve(dataFileName));
                writeExternalData(dataTemp, initializers, options, placement);
            }
            ModelProto proto = toProto(placement, dataFileName, options.progress(), true);
            if (proto.getSerializedSize() < 0 || proto.getSerializedSize() >= PROTOBUF_LIMIT) {
                throw new IOException("model " + target.getFileName() + " does not fit in one 2 GiB protobuf; save with external data");
            }
            try (OutputStream out = Files.newOutputStream(modelTemp)) {
                proto.writeTo(out);
            }
            if (dataTemp != null) {
                AtomicFiles.replace(dataTemp, folder.resolve(dataFileName));
                dataTemp = null;
            }
            AtomicFiles.replace(modelTemp, target);
            modelTemp = null;
        } finally {
            if (dataTemp != null) {
                Files.deleteIfExists(dataTemp);
            }
            if (modelTemp != null) {
                Files.deleteIfExists(modelTemp);
            }
        }
    }

    /** Writes each tensor above the size threshold, aligned, recording [offset, length] per value. */
    private void writeExternalData(Path file, List<Value> initializers, SaveOptions options, Map<Value, long[]> placement)
            throws IOException {
        LongConsumer progress = options.progress();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            long offset = 0;
            for (Value v : initializers) {
                TensorData data = v.constant();
                if (data.byteSize() < options.inlineBelowBytes()) {
                    continue;
                }
                long aligned = (offset + EXTERNAL_ALIGNMENT - 1) / EXTERNAL_ALIGNMENT * EXTERNAL_ALIGNMENT;
                ByteBuffer bytes = data.bytes();
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
