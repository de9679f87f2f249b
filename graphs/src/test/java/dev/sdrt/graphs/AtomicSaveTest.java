package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import dev.sdrt.graphs.ir.TensorData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How {@link OnnxModel#save} lays out and replaces a model and its external data. */
class AtomicSaveTest {
    private static final SaveOptions EXTERNAL = new SaveOptions(SaveOptions.ExternalData.ALWAYS, 0, 0, null);

    @TempDir
    Path tmp;

    private List<String> files() throws IOException {
        try (var entries = Files.list(tmp)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static OnnxModel withBias(float first) {
        OnnxModel m = TinyModels.linearRelu();
        m.graph().value("b").setConstant(TensorData.ofFloats(new long[] {4}, first, -0.5f, 0.25f, 0f));
        return m;
    }

    @Test
    void dataFileIsNamedAfterItsContentsAndTheOldOneGoes() throws IOException {
        Path model = tmp.resolve("model.onnx");
        withBias(1).save(model, EXTERNAL);
        Path first = OnnxModel.externalDataFiles(model).get(0);
        withBias(1).save(model, EXTERNAL);
        assertThat(OnnxModel.externalDataFiles(model)).containsExactly(first);

        withBias(2).save(model, EXTERNAL);
        Path second = OnnxModel.externalDataFiles(model).get(0);
        assertThat(second).isNotEqualTo(first);
        assertThat(files()).containsExactly("model.onnx", second.getFileName().toString());
        assertThat(OnnxModel.load(model).graph().value("b").constant().toFloats()[0]).isEqualTo(2);
    }

    @Test
    void inlineReSaveRemovesTheOldDataFile() throws IOException {
        Path model = tmp.resolve("model.onnx");
        TinyModels.linearRelu().save(model, EXTERNAL);
        TinyModels.linearRelu().save(model, SaveOptions.defaults().withExternalData(SaveOptions.ExternalData.NEVER));
        assertThat(files()).containsExactly("model.onnx");
        assertThat(OnnxModel.load(model).externalDataFiles()).isEmpty();
    }

    /** Models of earlier sdrt versions keep their weights in {@code NAME.data}. */
    @Test
    void legacyDataFileLoadsAndIsRemovedByTheNextSave() throws IOException {
        Path model = tmp.resolve("model.onnx");
        TinyModels.linearRelu().save(model, EXTERNAL);
        Path hashed = OnnxModel.externalDataFiles(model).get(0);
        Files.move(hashed, tmp.resolve("model.onnx.data"));
        ModelProto.Builder b = ModelProto.parseFrom(Files.readAllBytes(model)).toBuilder();
        for (var t : b.getGraphBuilder().getInitializerBuilderList()) {
            for (int i = 0; i < t.getExternalDataCount(); i++) {
                if (t.getExternalData(i).getKey().equals("location")) {
                    t.setExternalData(i, StringStringEntryProto.newBuilder().setKey("location").setValue("model.onnx.data"));
                }
            }
        }
        Files.write(model, b.build().toByteArray());

        OnnxModel legacy = OnnxModel.load(model);
        assertThat(legacy.externalDataFiles()).containsExactly(tmp.resolve("model.onnx.data").toAbsolutePath());
        assertThat(legacy.graph().value("w").constant().toFloats()).containsExactly(
                TinyModels.linearRelu().graph().value("w").constant().toFloats());
        legacy.save(model, EXTERNAL);
        assertThat(files()).containsExactly("model.onnx", hashed.getFileName().toString());
    }

    @Test
    void leftoversOfKilledSavesAreRemovedAndOtherFilesKept() throws IOException {
        Path model = tmp.resolve("model.onnx");
        List<String> leftovers = List.of(".model.onnx.1a2b3c4d.tmp", ".model.onnx.7.tmp", ".model.onnx.lock",
                "model.onnx.0123456789abcdef.data");
        List<String> others = List.of(".model.onnx.bak.1a2b.tmp", ".model.onnx.tmp", ".other.onnx.1a2b.tmp", "model.onnx.fp16.data",
                "weights.bin", "model.onnx.bak");
        for (String name : leftovers) {
            Files.writeString(tmp.resolve(name), "left by a killed save");
        }
        for (String name : others) {
            Files.writeString(tmp.resolve(name), "not ours");
        }
        TinyModels.linearRelu().save(model, EXTERNAL);
        List<String> expected = new ArrayList<>(others);
        expected.add("model.onnx");
        expected.add(OnnxModel.externalDataFiles(model).get(0).getFileName().toString());
        assertThat(files()).containsExactlyInAnyOrderElementsOf(expected);
    }

    @Test
    void concurrentSavesOfOneTargetLeaveOneCompleteModel() throws Exception {
        Path model = tmp.resolve("model.onnx");
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> saves = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                float bias = i;
                saves.add(pool.submit(() -> {
                    withBias(bias).save(model, EXTERNAL);
                    return null;
                }));
            }
            for (Future<?> f : saves) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        OnnxModel loaded = OnnxModel.load(model);
        float bias = loaded.graph().value("b").constant().toFloats()[0];
        assertThat(loaded.graph().value("b").constant().toFloats()).containsExactly(bias, -0.5f, 0.25f, 0f);
        assertThat(files()).containsExactly("model.onnx", loaded.externalDataFiles().get(0).getFileName().toString());
    }
}
