package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import dev.sdrt.graphs.io.Messages;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.CleanupPass;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad models that are not about external data: each is refused with a short message naming the problem. */
class OnnxModelErrorsTest {
    @TempDir
    Path tmp;

    /** linearRelu as a proto, edited, written to a file. */
    private Path edited(Consumer<ModelProto.Builder> edit) throws IOException {
        ModelProto.Builder b = TinyModels.linearRelu().toInlineProto().toBuilder();
        edit.accept(b);
        Path file = tmp.resolve("edited.onnx");
        Files.write(file, b.build().toByteArray());
        return file;
    }

    private static void assertRefused(Path file, String... fragments) {
        assertThatThrownBy(() -> OnnxModel.load(file)).isInstanceOf(OnnxFormatException.class)
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(Messages.MAX_LENGTH))
                .message().contains(fragments);
    }

    @Test
    void inlineDimsWhoseProductOverflowsAreRefused() throws IOException {
        Path file = edited(b -> b.getGraphBuilder().setInitializer(0,
                b.getGraph().getInitializer(0).toBuilder().clearDims().addDims(1L << 40).addDims(1L << 40)));
        assertRefused(file, "'w'", "more than 2^63 bytes");
    }

    @Test
    void valueShapeWhoseProductOverflowsIsRefused() throws IOException {
        Path large = edited(b -> b.getGraphBuilder().getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder()
                .getShapeBuilder().getDimBuilder(0).setDimValue(1L << 40));
        assertThat(OnnxModel.load(large).graph().value("x").shape().dim(0).value()).isEqualTo(1L << 40);
        Path both = edited(b -> {
            var shape = b.getGraphBuilder().getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder().getShapeBuilder();
            shape.getDimBuilder(0).setDimValue(1L << 40);
            shape.getDimBuilder(1).setDimValue(1L << 40);
        });
        assertRefused(both, "'x'", "more than 2^63 elements");
    }

    @Test
    void unknownElementTypeNamesTheTensor() throws IOException {
        Path file = edited(b -> b.getGraphBuilder().setInitializer(0, b.getGraph().getInitializer(0).toBuilder().setDataType(99)));
        assertRefused(file, "'w'", "99");
    }

    @Test
    void emptyInputNameIsAnOmittedInputAndCleanupLeavesSuchNodesAlone() throws IOException {
        // Add("", b) and Slice(w, starts, ends, "", steps): omitted inputs, which used to crash the constant folder
        Graph g = new Graph("omitted");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(4));
        Value b = g.addInitializer("b", dev.sdrt.graphs.ir.TensorData.ofFloats(new long[] {4}, 1, 2, 3, 4));
        Node add = g.addNode("Add", "add", Arrays.asList(null, b), 1);
        Value starts = g.addInitializer("starts", dev.sdrt.graphs.ir.TensorData.vector(1));
        Value ends = g.addInitializer("ends", dev.sdrt.graphs.ir.TensorData.vector(3));
        Node slice = g.addNode("Slice", "slice", Arrays.asList(b, starts, ends, null, null), 1);
        Value sum = g.op("Add", "sum", x, g.op("Mul", "mul", add.output(0), g.op("ReduceSum", "rs", slice.output(0))));
        sum.setTypeAndShape(DataType.FLOAT, Shape.of(4));
        g.addOutput(sum);
        Path file = tmp.resolve("omitted.onnx");
        new OnnxModel(g, 17).save(file);
        ModelProto saved = ModelProto.parseFrom(Files.readAllBytes(file));
        assertThat(saved.getGraph().getNode(0).getInput(0)).isEmpty();

        OnnxModel loaded = OnnxModel.load(file);
        Node loadedAdd = loaded.graph().nodes().get(0);
        assertThat(loadedAdd.input(0)).isNull();
        assertThat(loadedAdd.input(1).name()).isEqualTo("b");
        new CleanupPass().apply(loaded);
        assertThat(loaded.graph().nodes()).extracting(Node::opType).contains("Add").doesNotContain("Slice");
    }

    @Test
    void graphWithoutOutputsIsRefusedOnLoad() throws IOException {
        Path file = edited(b -> b.getGraphBuilder().clearOutput());
        assertRefused(file, "no outputs");
    }

    @Test
    void cycleIsRefusedAndOutOfOrderNodesAreSorted() throws IOException {
        Path outOfOrder = edited(b -> {
            NodeProto first = b.getGraph().getNode(0);
            b.getGraphBuilder().removeNode(0).addNode(first);
        });
        assertThat(OnnxModel.load(outOfOrder).graph().nodes()).extracting(Node::opType).containsExactly("MatMul", "Add", "Relu");

        Path cycle = edited(b -> b.getGraphBuilder().getNodeBuilder(0).setInput(0, "y"));
        assertRefused(cycle, "cycle");
    }

    @Test
    void nodeWritingAGraphInputIsRefused() throws IOException {
        Path file = edited(b -> b.getGraphBuilder().getNodeBuilder(2).setOutput(0, "x"));
        assertRefused(file, "'x'", "graph input");
    }

    @Test
    void malformedConstantTensorIsRefusedOnLoad() throws IOException {
        Path file = edited(b -> b.getGraphBuilder().addNode(NodeProto.newBuilder().setOpType("Constant").setName("c")
                .addOutput("c_out").addAttribute(ai.onnx.proto.OnnxMl.AttributeProto.newBuilder().setName("value")
                        .setType(ai.onnx.proto.OnnxMl.AttributeProto.AttributeType.TENSOR)
                        .setT(TensorProto.newBuilder().setDataType(1).addDims(3).setRawData(ByteString.copyFrom(new byte[5]))))));
        assertRefused(file, "'value'", "'c'", "raw_data");
    }

    @Test
    void megabyteNamesAreQuotedShort() throws IOException {
        String huge = "n".repeat(1 << 20);
        Path file = edited(b -> b.getGraphBuilder().getNodeBuilder(0).setName(huge).setInput(0, huge + "ghost"));
        assertRefused(file, "nnn…' (1048581 characters)", "neither a graph input");
    }

    @Test
    void savingAGraphWithoutOutputsIsRefusedAndKeepsTheOldFile() throws IOException {
        Path file = tmp.resolve("model.onnx");
        TinyModels.linearRelu().save(file);
        byte[] before = Files.readAllBytes(file);
        OnnxModel m = TinyModels.linearRelu();
        m.graph().clearOutputs();
        assertThatThrownBy(() -> m.save(file)).isInstanceOf(OnnxFormatException.class).hasMessageContaining("no outputs");
        assertThat(Files.readAllBytes(file)).isEqualTo(before);
    }

    @Test
    void savingADanglingReadIsRefused() {
        OnnxModel m = TinyModels.linearRelu();
        m.graph().removeNode(m.graph().nodes().get(0)); // the MatMul; Add still reads its output
        assertThatThrownBy(() -> m.save(tmp.resolve("dangling.onnx"))).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("'/linear/Add'").hasMessageContaining("neither a graph input");
        assertThat(tmp.resolve("dangling.onnx")).doesNotExist();
    }

    @Test
    void checkerRejectedModelNeverReplacesAGoodOne() throws IOException {
        Path file = tmp.resolve("model.onnx");
        TinyModels.linearRelu().save(file, SaveOptions.defaults().withCheck(true));
        byte[] before = Files.readAllBytes(file);
        OnnxModel bad = TinyModels.linearRelu();
        Node relu = bad.graph().nodes().get(2);
        Value y = bad.graph().op("NoSuchOp", "mystery", relu.input(0)).setTypeAndShape(DataType.FLOAT, Shape.of(2, 4));
        bad.graph().replaceAllUses(relu.output(0), y);
        bad.graph().cleanup();
        assertThatThrownBy(() -> bad.save(file, SaveOptions.defaults().withCheck(true))).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("checker").hasMessageContaining("NoSuchOp");
        assertThat(Files.readAllBytes(file)).isEqualTo(before);
        try (var files = Files.list(tmp)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly("model.onnx");
        }
    }

    @Test
    void cascadingCheckerErrorsAreCutToTheFirstOnes() throws IOException {
        // MatMul of [2,3] and [5,7] fails; every node after it fails for want of an input type
        Graph g = new Graph("cascade");
        Value v = g.op("MatMul", "mm", g.addInput("a", DataType.FLOAT, Shape.of(2, 3)),
                g.addInput("b", DataType.FLOAT, Shape.of(5, 7)));
        for (int i = 0; i < 40; i++) {
            v = g.op("Relu", "relu_" + i + "_" + "r".repeat(500), v);
        }
        v.setTypeAndShape(DataType.FLOAT, Shape.of(2, 7));
        g.addOutput(v);
        Path file = tmp.resolve("cascade.onnx");
        new OnnxModel(g, 17).save(file);
        assertThatThrownBy(() -> OnnxChecker.check(file)).isInstanceOf(OnnxChecker.OnnxCheckException.class)
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(Messages.MAX_LENGTH).doesNotContain("\n")
                        .contains("Incompatible dimensions").containsPattern("and \\d+ more errors"));
    }

    @Test
    void quoteEscapesAndCuts() {
        assertThat(Messages.quote("a\nb\u0001")).isEqualTo("'a\\nb\\u0001'");
        assertThat(Messages.quote("x".repeat(10), 4)).isEqualTo("'xxxx…' (10 characters)");
        assertThat(Messages.cap("y".repeat(2000), Messages.MAX_LENGTH)).hasSize(Messages.MAX_LENGTH).endsWith("…");
        assertThat(new OnnxFormatException("z".repeat(5000)).getMessage()).hasSize(Messages.MAX_LENGTH);
    }
}
