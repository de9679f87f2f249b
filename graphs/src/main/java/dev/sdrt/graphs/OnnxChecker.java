package dev.sdrt.graphs;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.io.Messages;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;

/** The ONNX checker and shape inference, through the native ONNX library (bytedeco onnx). */
public final class OnnxChecker {
    /** Initializers with more elements than this are handed to shape inference as typed inputs, without data. */
    private static final long INLINE_ELEMENTS = 4096;
    /** Errors of one native report that a message shows; the others are counted. */
    private static final int SHOWN_ERRORS = 2;
    /** How much of one native error a message shows (it may quote a node name of any length). */
    private static final int ERROR_LENGTH = 300;

    private static volatile boolean loaded;

    private OnnxChecker() {
    }

    private static void ensureLoaded() {
        if (loaded) {
            return;
        }
        synchronized (OnnxChecker.class) {
            if (loaded) {
                return;
            }
            try {
                Loader.load(org.bytedeco.onnx.global.onnx.class);
            } catch (UnsatisfiedLinkError | NoClassDefFoundError | ExceptionInInitializerError e) {
                throw new IllegalStateException("the native ONNX library (org.bytedeco:onnx, " + Loader.getPlatform()
                        + ") could not be loaded, so the ONNX checker and shape inference are unavailable: " + e, e);
            }
            loaded = true;
        }
    }

    /** Runs the full ONNX checker on a saved model file (external data is resolved beside it). */
    public static void check(Path modelFile) {
        String rejection = rejection(modelFile);
        if (rejection != null) {
            throw new OnnxCheckException("ONNX checker rejected " + modelFile + ": " + rejection, null);
        }
    }

    /** Why the full ONNX checker rejects {@code modelFile}, its first errors, or null when it accepts the file. */
    static String rejection(Path modelFile) {
        ensureLoaded();
        try {
            org.bytedeco.onnx.global.onnx.check_model(modelFile.toAbsolutePath().toString(), true, false, false);
            return null;
        } catch (RuntimeException e) {
            return summary(e.getMessage());
        }
    }

    /**
     * A native error report cut down to its first errors. One bad node makes shape inference report
     * every node downstream of it as well, which runs to hundreds of lines on a real model; the
     * first error is the one to fix. A "==> Context" line belongs to the error above it.
     */
    static String summary(String report) {
        if (report == null || report.isBlank()) {
            return "(no details)";
        }
        List<String> errors = new ArrayList<>();
        for (String line : report.lines().map(String::strip).filter(l -> !l.isEmpty()).toList()) {
            if (line.startsWith("==>") && !errors.isEmpty()) {
                errors.set(errors.size() - 1, errors.get(errors.size() - 1) + " " + line);
            } else {
                errors.add(line);
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(SHOWN_ERRORS, errors.size()); i++) {
            sb.append(i == 0 ? "" : "; ").append(Messages.cap(errors.get(i), ERROR_LENGTH));
        }
        if (errors.size() > SHOWN_ERRORS) {
            int more = errors.size() - SHOWN_ERRORS;
            sb.append(" (and ").append(more).append(" more error").append(more == 1 ? "" : "s").append(")");
        }
        return sb.toString();
    }

    /**
     * Runs ONNX shape inference and records the inferred type and shape on every node output of the
     * graph. Large weights are not copied: they enter as typed inputs.
     */
    public static void inferShapes(OnnxModel model) {
        inferShapes(model, false);
    }

    /**
     * As {@link #inferShapes(OnnxModel)}; when {@code strict}, a node whose inference fails
     * (incompatible shapes, an inferred shape that contradicts a stated one) is an error instead of
     * being left uninferred. Ops without a registered schema are not errors either way.
     */
    public static void inferShapes(OnnxModel model, boolean strict) {
        ensureLoaded();
        ModelProto full = model.toInlineProtoForInference(INLINE_ELEMENTS);
        byte[] bytes = full.toByteArray();
        org.bytedeco.onnx.ModelProto nativeModel = new org.bytedeco.onnx.ModelProto();
        try (BytePointer in = new BytePointer(bytes)) {
            if (!org.bytedeco.onnx.global.onnx.ParseProtoFromBytes(nativeModel, in, bytes.length)) {
                throw new OnnxCheckException("shape inference could not parse the serialized model", null);
            }
            try {
                // Data propagation follows Shape → Gather → Concat → Reshape chains, so static sizes survive
                // the dynamic-looking reshapes that exporters write around norms and attention.
                try (org.bytedeco.onnx.ShapeInferenceOptions options = new org.bytedeco.onnx.ShapeInferenceOptions(false, strict ? 1 : 0, true)) {
                    org.bytedeco.onnx.global.onnx.InferShapes(nativeModel, org.bytedeco.onnx.OpSchemaRegistry.Instance(), options,
                            null);
                }
            } catch (RuntimeException e) {
                throw new OnnxCheckException("shape inference failed: " + summary(e.getMessage()), e);
            }
            BytePointer out = nativeModel.SerializeAsString();
            byte[] result = new byte[Math.toIntExact(out.limit() - out.position())];
            out.get(result);
            applyInferred(model.graph(), ModelProto.parseFrom(result).getGraph());
        } catch (InvalidProtocolBufferException e) {
            throw new OnnxCheckException("shape inference returned an unreadable model", e);
        } finally {
            nativeModel.close();
        }
    }

    /** Element types sdrt has a DataType for; inference may infer others (complex, int4), which stay unknown. */
    private static final Set<Integer> KNOWN_TYPES = Arrays.stream(dev.sdrt.graphs.ir.DataType.values())
            .map(dev.sdrt.graphs.ir.DataType::onnxCode).collect(Collectors.toUnmodifiableSet());

    private static void applyInferred(Graph graph, GraphProto inferred) {
        List<ValueInfoProto> infos = new ArrayList<>(inferred.getValueInfoList());
        infos.addAll(inferred.getOutputList());
        for (ValueInfoProto vi : infos) {
            Value v = graph.value(vi.getName());
            if (v == null || v.isConstant() || !vi.getType().hasTensorType()) {
                continue;
            }
            var tt = vi.getType().getTensorType();
            if (tt.getElemType() != 0 && KNOWN_TYPES.contains(tt.getElemType())) {
                v.setType(dev.sdrt.graphs.ir.DataType.fromOnnx(tt.getElemType()));
            }
            if (tt.hasShape()) {
                List<Dim> dims = new ArrayList<>();
                for (var d : tt.getShape().getDimList()) {
                    dims.add(d.hasDimValue() && d.getDimValue() >= 0 ? Dim.of(d.getDimValue())
                            : d.hasDimParam() && !d.getDimParam().isEmpty() ? Dim.symbolic(d.getDimParam()) : Dim.UNKNOWN);
                }
                v.setShape(Shape.of(dims));
            }
        }
    }

    /** The checker or shape inference found the model invalid. Messages are capped like {@link OnnxFormatException}'s. */
    public static final class OnnxCheckException extends RuntimeException {
        public OnnxCheckException(String message, Throwable cause) {
            super(Messages.cap(message, Messages.MAX_LENGTH), cause);
        }
    }
}
