package dev.sdrt.runtime.ort;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes tiny ONNX models of single-output nodes (Identity, Add, ...), encoding the protobuf by hand
 * so that the runtime tests need no ONNX library: enough to give a model inputs and outputs of any
 * element type with fixed, named dynamic or unnamed dynamic dimensions.
 *
 * <pre>
 * new TinyOnnx().input("x", TinyOnnx.FLOAT, "batch", 3L).identity("x", "y").output("y", TinyOnnx.FLOAT, "batch", 3L)
 * </pre>
 *
 * Dimensions are given as a Long (fixed), a String (named dynamic) or null (unnamed dynamic).
 */
public final class TinyOnnx {

    // TensorProto.DataType values.
    public static final int FLOAT = 1;
    public static final int UINT8 = 2;
    public static final int INT8 = 3;
    public static final int UINT16 = 4;
    public static final int INT32 = 6;
    public static final int INT64 = 7;
    public static final int BOOL = 9;
    public static final int FLOAT16 = 10;
    public static final int DOUBLE = 11;
    public static final int BFLOAT16 = 16;

    private final ByteArrayOutputStream graph = new ByteArrayOutputStream();
    private final ByteArrayOutputStream inputs = new ByteArrayOutputStream();
    private final ByteArrayOutputStream outputs = new ByteArrayOutputStream();

    public TinyOnnx input(String name, int elementType, Object... dims) {
        writeBytes(inputs, 11, valueInfo(name, elementType, dims)); // GraphProto.input
        return this;
    }

    public TinyOnnx output(String name, int elementType, Object... dims) {
        writeBytes(outputs, 12, valueInfo(name, elementType, dims)); // GraphProto.output
        return this;
    }

    public TinyOnnx identity(String input, String output) {
        return node("Identity", output, input);
    }

    /** A node of {@code op} with one output and the given inputs, in order. */
    public TinyOnnx node(String op, String output, String... inputs) {
        ByteArrayOutputStream node = new ByteArrayOutputStream();
        for (String input : inputs) {
            writeString(node, 1, input); // NodeProto.input
        }
        writeString(node, 2, output); // NodeProto.output
        writeString(node, 4, op); // NodeProto.op_type
        writeBytes(graph, 1, node.toByteArray()); // GraphProto.node
        return this;
    }

    public Path write(Path file) throws IOException {
        ByteArrayOutputStream graphProto = new ByteArrayOutputStream();
        graphProto.writeBytes(graph.toByteArray());
        writeString(graphProto, 2, "tiny"); // GraphProto.name
        graphProto.writeBytes(inputs.toByteArray());
        graphProto.writeBytes(outputs.toByteArray());

        ByteArrayOutputStream opset = new ByteArrayOutputStream();
        writeVarintField(opset, 2, 17); // OperatorSetIdProto.version

        ByteArrayOutputStream model = new ByteArrayOutputStream();
        writeVarintField(model, 1, 8); // ModelProto.ir_version
        writeBytes(model, 7, graphProto.toByteArray()); // ModelProto.graph
        writeBytes(model, 8, opset.toByteArray()); // ModelProto.opset_import
        return Files.write(file, model.toByteArray());
    }

    private static byte[] valueInfo(String name, int elementType, Object... dims) {
        ByteArrayOutputStream shape = new ByteArrayOutputStream();
        for (Object dim : dims) {
            ByteArrayOutputStream dimension = new ByteArrayOutputStream();
            if (dim instanceof Long value) {
                writeVarintField(dimension, 1, value); // Dimension.dim_value
            } else if (dim instanceof String param) {
                writeString(dimension, 2, param); // Dimension.dim_param
            }
            writeBytes(shape, 1, dimension.toByteArray()); // TensorShapeProto.dim
        }
        ByteArrayOutputStream tensorType = new ByteArrayOutputStream();
        writeVarintField(tensorType, 1, elementType); // TypeProto.Tensor.elem_type
        writeBytes(tensorType, 2, shape.toByteArray()); // TypeProto.Tensor.shape
        ByteArrayOutputStream type = new ByteArrayOutputStream();
        writeBytes(type, 1, tensorType.toByteArray()); // TypeProto.tensor_type
        ByteArrayOutputStream info = new ByteArrayOutputStream();
        writeString(info, 1, name); // ValueInfoProto.name
        writeBytes(info, 2, type.toByteArray()); // ValueInfoProto.type
        return info.toByteArray();
    }

    private static void writeVarintField(ByteArrayOutputStream out, int field, long value) {
        writeVarint(out, (long) field << 3);
        writeVarint(out, value);
    }

    private static void writeString(ByteArrayOutputStream out, int field, String value) {
        writeBytes(out, field, value.getBytes(StandardCharsets.UTF_8));
    }

    private static void writeBytes(ByteArrayOutputStream out, int field, byte[] value) {
        writeVarint(out, ((long) field << 3) | 2);
        writeVarint(out, value.length);
        out.writeBytes(value);
    }

    private static void writeVarint(ByteArrayOutputStream out, long value) {
        while ((value & ~0x7fL) != 0) {
            out.write((int) ((value & 0x7f) | 0x80));
            value >>>= 7;
        }
        out.write((int) value);
    }
}
