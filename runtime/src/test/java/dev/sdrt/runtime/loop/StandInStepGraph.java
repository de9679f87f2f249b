package dev.sdrt.runtime.loop;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes a stand-in for the exporter's scheduler-step graph (which the runtime tests cannot make),
 * with its inputs and outputs for a guided batch of one image, so the loop runs on ONNX Runtime
 * with the tiny UNet and VAE fixtures. It is no scheduler, only additions that make every output
 * depend on the step's inputs, the noise row included:
 *
 * <pre>
 *   next_sample      = sample + noise
 *   denoised         = previous_denoised + sample
 *   next_model_input = model_output + next_sample   (broadcast over the guided pair)
 * </pre>
 *
 * The coefficient row is bound but unused. The protobuf is encoded by hand, as the runtime has no
 * ONNX library.
 */
final class StandInStepGraph {

    private static final int FLOAT = 1; // TensorProto.DataType

    private StandInStepGraph() {}

    /** Writes the graph for latents of {@code latentShape} ([1, c, h, w]) and a guided pair of model inputs. */
    static Path write(Path file, long... latentShape) throws IOException {
        long[] pair = latentShape.clone();
        pair[0] = 2 * latentShape[0];
        ByteArrayOutputStream graph = new ByteArrayOutputStream();
        writeBytes(graph, 1, node("Add", List.of("sample", "noise"), "next_sample")); // GraphProto.node
        writeBytes(graph, 1, node("Add", List.of("previous_denoised", "sample"), "denoised"));
        writeBytes(graph, 1, node("Add", List.of("model_output", "next_sample"), "next_model_input"));
        writeString(graph, 2, "stand_in_scheduler_step"); // GraphProto.name
        for (String input : List.of("sample", "previous_denoised", "noise")) {
            writeBytes(graph, 11, valueInfo(input, latentShape)); // GraphProto.input
        }
        writeBytes(graph, 11, valueInfo("model_output", pair));
        writeBytes(graph, 11, valueInfo("coefficients", 9));
        writeBytes(graph, 12, valueInfo("next_sample", latentShape)); // GraphProto.output
        writeBytes(graph, 12, valueInfo("denoised", latentShape));
        writeBytes(graph, 12, valueInfo("next_model_input", pair));

        ByteArrayOutputStream opset = new ByteArrayOutputStream();
        writeVarintField(opset, 2, 17); // OperatorSetIdProto.version
        ByteArrayOutputStream model = new ByteArrayOutputStream();
        writeVarintField(model, 1, 8); // ModelProto.ir_version
        writeBytes(model, 7, graph.toByteArray()); // ModelProto.graph
        writeBytes(model, 8, opset.toByteArray()); // ModelProto.opset_import
        return Files.write(file, model.toByteArray());
    }

    private static byte[] node(String op, List<String> inputs, String output) {
        ByteArrayOutputStream node = new ByteArrayOutputStream();
        inputs.forEach(input -> writeString(node, 1, input)); // NodeProto.input
        writeString(node, 2, output); // NodeProto.output
        writeString(node, 4, op); // NodeProto.op_type
        return node.toByteArray();
    }

    private static byte[] valueInfo(String name, long... dims) {
        ByteArrayOutputStream shape = new ByteArrayOutputStream();
        for (long dim : dims) {
            ByteArrayOutputStream dimension = new ByteArrayOutputStream();
            writeVarintField(dimension, 1, dim); // Dimension.dim_value
            writeBytes(shape, 1, dimension.toByteArray()); // TensorShapeProto.dim
        }
        ByteArrayOutputStream tensorType = new ByteArrayOutputStream();
        writeVarintField(tensorType, 1, FLOAT); // TypeProto.Tensor.elem_type
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
