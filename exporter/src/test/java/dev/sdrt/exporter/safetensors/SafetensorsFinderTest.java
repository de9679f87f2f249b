package dev.sdrt.exporter.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFinderTest {
    @TempDir
    Path dir;

    private void writeWeights(String fileName) throws Exception {
        new SafetensorsWriter().addFloats("w", new long[] {1}, new float[] {1}).write(dir.resolve(fileName));
    }

    @Test
    void findsFixtureWeights() throws Exception {
        assertThat(SafetensorsFinder.find(TestFixtures.folder("tiny_sd_unet")).getFileName())
                .hasToString("diffusion_pytorch_model.safetensors");
        assertThat(SafetensorsFinder.find(TestFixtures.folder("tiny_clip_text")).getFileName())
                .hasToString("model.safetensors");
    }

    @Test
    void prefersFullPrecisionOverFp16Variant() throws Exception {
        writeWeights("diffusion_pytorch_model.fp16.safetensors");
        assertThat(SafetensorsFinder.find(dir).getFileName()).hasToString("diffusion_pytorch_model.fp16.safetensors");
        writeWeights("diffusion_pytorch_model.safetensors");
        assertThat(SafetensorsFinder.find(dir).getFileName()).hasToString("diffusion_pytorch_model.safetensors");
    }

    @Test
    void opensShardedWeightsThroughTheirIndex() throws Exception {
        writeWeights("diffusion_pytorch_model-00001-of-00001.safetensors");
        Files.writeString(dir.resolve("diffusion_pytorch_model.safetensors.index.json"),
                "{\"weight_map\": {\"w\": \"diffusion_pytorch_model-00001-of-00001.safetensors\"}}");
        try (TensorSource source = SafetensorsFinder.open(dir)) {
            assertThat(source).isInstanceOf(ShardedSafetensors.class);
            assertThat(source.tensor("w").toFloatArray()).containsExactly(1);
        }
    }

    @Test
    void opensAFileGivenDirectly() throws Exception {
        writeWeights("custom_name.safetensors");
        try (TensorSource source = SafetensorsFinder.open(dir.resolve("custom_name.safetensors"))) {
            assertThat(source).isInstanceOf(SafetensorsFile.class);
            assertThat(source.names()).containsExactly("w");
        }
    }

    @Test
    void missingWeightsListFolderContents() throws Exception {
        Files.writeString(dir.resolve("config.json"), "{}");
        Files.writeString(dir.resolve("diffusion_pytorch_model.bin"), "pickle");
        assertThatThrownBy(() -> SafetensorsFinder.find(dir))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining(dir + ": no safetensors weights")
                .hasMessageContaining("it holds config.json, diffusion_pytorch_model.bin")
                .hasMessageContaining("pickle weights");
    }

    @Test
    void emptyFolder() {
        assertThatThrownBy(() -> SafetensorsFinder.find(dir))
                .isInstanceOf(SafetensorsException.class).hasMessageContaining("it is empty");
    }
}
