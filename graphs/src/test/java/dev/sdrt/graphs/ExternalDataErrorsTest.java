package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each kind of bad input to {@link OnnxModel#load} gets a clear error naming the problem. */
class ExternalDataErrorsTest {
    @TempDir
    Path tmp;
    Path model;
    Path data;

    @BeforeEach
    void saveExternalModel() throws IOException {
        model = tmp.resolve("m/model.onnx");
        SaveOptions opts = new SaveOptions(SaveOptions.ExternalData.ALWAYS, 0, 0, null);
        TinyModels.linearRelu().save(model, opts);
        data = OnnxModel.externalDataFiles(model).get(0);
        assertThat(data.getFileName().toString()).matches("model\\.onnx\\.[0-9a-f]{16}\\.data");
        assertThat(OnnxModel.load(model).graph().value("w").constant().toFloats()).hasSize(12);
    }

    /** Rewrites the external-data entry of initializer w. */
    private void editWeightLocation(UnaryOperator<TensorProto.Builder> edit) throws IOException {
        ModelProto proto = ModelProto.parseFrom(Files.readAllBytes(model));
        ModelProto.Builder b = proto.toBuilder();
        var g = b.getGraphBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals("w")) {
                g.setInitializer(i, edit.apply(g.getInitializer(i).toBuilder()));
            }
        }
        Files.write(model, b.build().toByteArray());
    }

    private static TensorProto.Builder withEntry(TensorProto.Builder t, String key, String value) {
        for (int i = 0; i < t.getExternalDataCount(); i++) {
            if (t.getExternalData(i).getKey().equals(key)) {
                t.setExternalData(i, StringStringEntryProto.newBuilder().setKey(key).setValue(value));
                return t;
            }
        }
        return t.addExternalData(StringStringEntryProto.newBuilder().setKey(key).setValue(value));
    }

    @Test
    void locationOutsideTheModelFolderIsRefused() throws IOException {
        Files.copy(data, tmp.resolve("outside.data"));
        editWeightLocation(t -> withEntry(t, "location", "../outside.data"));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("'w'").hasMessageContaining("outside the model folder");
    }

    @Test
    void absoluteLocationIsRefused() throws IOException {
        String absolute = data.toAbsolutePath().toString();
        editWeightLocation(t -> withEntry(t, "location", absolute));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("absolute path");
    }

    @Test
    void symlinkLeavingTheFolderIsRefused() throws IOException {
        Files.copy(data, tmp.resolve("outside.data"));
        Files.createSymbolicLink(tmp.resolve("m/link.data"), tmp.resolve("outside.data"));
        editWeightLocation(t -> withEntry(t, "location", "link.data"));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("links outside the model folder");
    }

    @Test
    void missingSideFileIsNamed() throws IOException {
        Files.delete(data);
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining(data.getFileName().toString()).hasMessageContaining("missing");
    }

    @Test
    void rangePastTheEndOfTheFileIsRefused() throws IOException {
        try (FileChannel ch = FileChannel.open(data, StandardOpenOption.WRITE)) {
            ch.truncate(20);
        }
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("past the end");
    }

    @Test
    void offsetPastTheEndIsRefused() throws IOException {
        editWeightLocation(t -> withEntry(t, "offset", "1000000"));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("past the end");
    }

    @Test
    void offsetNearLongMaxIsRefusedWithoutOverflow() throws IOException {
        editWeightLocation(t -> withEntry(t, "offset", Long.toString(Long.MAX_VALUE)));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("'w'").hasMessageContaining("past the end").hasMessageNotContaining("overflow");
    }

    @Test
    void negativeLengthIsRefused() throws IOException {
        editWeightLocation(t -> withEntry(t, "length", "-48"));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("length -48 is negative");
    }

    @Test
    void dimsWhoseByteSizeOverflowsAreRefused() throws IOException {
        editWeightLocation(t -> t.clearDims().addDims(1L << 40).addDims(1L << 40));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("'w'").hasMessageContaining("more than 2^63 bytes");
    }

    @Test
    void megabyteLocationIsQuotedShort() throws IOException {
        editWeightLocation(t -> withEntry(t, "location", "../" + "x".repeat(1 << 20)));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("outside the model folder").hasMessageContaining("(1048579 characters)")
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(dev.sdrt.graphs.io.Messages.MAX_LENGTH));
    }

    @Test
    void lengthThatDisagreesWithTheShapeIsRefused() throws IOException {
        editWeightLocation(t -> withEntry(t, "length", "40"));
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("does not match its shape");
    }

    @Test
    void malformedProtobufIsNamed() throws IOException {
        Path bad = tmp.resolve("bad.onnx");
        Files.write(bad, new byte[] {0x0a, (byte) 0xff, (byte) 0xff, 0x01, 0x02, 0x03});
        assertThatThrownBy(() -> OnnxModel.load(bad)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("malformed ONNX file").hasMessageContaining("bad.onnx");
    }

    @Test
    void missingModelFileIsNamed() {
        assertThatThrownBy(() -> OnnxModel.load(tmp.resolve("nope.onnx"))).isInstanceOf(NoSuchFileException.class)
                .hasMessageContaining("nope.onnx");
    }

    @Test
    void danglingNodeInputIsNamed() throws IOException {
        ModelProto proto = ModelProto.parseFrom(Files.readAllBytes(model));
        ModelProto.Builder b = proto.toBuilder();
        b.getGraphBuilder().getNodeBuilder(0).setInput(0, "ghost");
        Files.write(model, b.build().toByteArray());
        assertThatThrownBy(() -> OnnxModel.load(model)).isInstanceOf(OnnxFormatException.class)
                .hasMessageContaining("'ghost'");
    }

    @Test
    void failedSaveLeavesTheOldModelIntact() throws IOException {
        byte[] before = Files.readAllBytes(model);
        OnnxModel m = TinyModels.linearRelu();
        // A weight whose bytes cannot be produced makes the save fail after the temp files exist.
        m.graph().value("w").setConstant(dev.sdrt.graphs.ir.TensorData.generated(
                dev.sdrt.graphs.ir.DataType.FLOAT, new long[] {3, 4}, () -> {
                    throw new IllegalStateException("disk full (simulated)");
                }));
        assertThatThrownBy(() -> m.save(model, new SaveOptions(SaveOptions.ExternalData.ALWAYS, 0, 0, null)))
                .hasMessageContaining("simulated");
        assertThat(Files.readAllBytes(model)).isEqualTo(before);
        try (var files = Files.list(model.getParent())) {
            assertThat(files.map(p -> p.getFileName().toString()).toList())
                    .containsExactlyInAnyOrder("model.onnx", data.getFileName().toString());
        }
    }
}
