package dev.sdrt.exporter.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsShardedTest {
    @TempDir
    Path dir;
    private Path index;

    @BeforeEach
    void writeTwoShards() throws Exception {
        new SafetensorsWriter()
                .addFloats("conv_in.weight", new long[] {2, 2}, new float[] {1, 2, 3, 4})
                .addFloats("conv_in.bias", new long[] {2}, new float[] {5, 6})
                .write(dir.resolve("model-00001-of-00002.safetensors"));
        new SafetensorsWriter()
                .addFloats("conv_out.weight", new long[] {1}, new float[] {7})
                .write(dir.resolve("model-00002-of-00002.safetensors"));
        index = dir.resolve("model.safetensors.index.json");
        writeIndex("""
                "conv_in.weight": "model-00001-of-00002.safetensors",
                "conv_in.bias": "model-00001-of-00002.safetensors",
                "conv_out.weight": "model-00002-of-00002.safetensors"
                """);
    }

    private void writeIndex(String weightMapEntries) throws Exception {
        Files.writeString(index, "{\"metadata\": {\"total_size\": 28},\n\"weight_map\": {\n" + weightMapEntries + "}}");
    }

    @Test
    void readsTensorsAcrossShards() throws Exception {
        try (ShardedSafetensors sharded = ShardedSafetensors.open(index)) {
            assertThat(sharded.names()).containsExactly("conv_in.bias", "conv_in.weight", "conv_out.weight");
            assertThat(sharded.contains("conv_out.weight")).isTrue();
            assertThat(sharded.shardFiles()).hasSize(2);
            assertThat(sharded.tensor("conv_in.weight").toFloatArray()).containsExactly(1, 2, 3, 4);
            assertThat(sharded.tensor("conv_out.weight").toFloatArray()).containsExactly(7);
        }
    }

    @Test
    void opensShardsOnlyWhenNeeded() throws Exception {
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        try (ShardedSafetensors sharded = ShardedSafetensors.open(index)) {
            assertThat(sharded.tensor("conv_in.bias").toFloatArray()).containsExactly(5, 6);
            assertThatThrownBy(() -> sharded.tensor("conv_out.weight"))
                    .isInstanceOf(SafetensorsException.class)
                    .hasMessageContaining(index.toString())
                    .hasMessageContaining("model-00002-of-00002.safetensors does not exist");
        }
    }

    @Test
    void rejectsShardOutsideIndexFolder() throws Exception {
        writeIndex("\"conv_in.weight\": \"../elsewhere.safetensors\"");
        assertThatThrownBy(() -> ShardedSafetensors.open(index))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining(index.toString())
                .hasMessageContaining("shard '../elsewhere.safetensors' is not a file inside the index's folder");
    }

    @Test
    void rejectsAbsoluteShardPath() throws Exception {
        Path absolute = dir.resolve("model-00001-of-00002.safetensors").toAbsolutePath();
        writeIndex("\"conv_in.weight\": \"" + absolute + "\"");
        assertThatThrownBy(() -> ShardedSafetensors.open(index))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining("is not a file inside the index's folder");
    }

    @Test
    void tensorMissingFromItsShard() throws Exception {
        writeIndex("\"conv_out.bias\": \"model-00002-of-00002.safetensors\"");
        try (ShardedSafetensors sharded = ShardedSafetensors.open(index)) {
            assertThatThrownBy(() -> sharded.tensor("conv_out.bias"))
                    .isInstanceOf(SafetensorsException.class)
                    .hasMessageContaining(index.toString())
                    .hasMessageContaining("maps tensor 'conv_out.bias' to shard")
                    .hasMessageContaining("which has no such tensor");
        }
    }

    @Test
    void tensorMissingFromIndexSuggestsCloseNames() throws Exception {
        try (ShardedSafetensors sharded = ShardedSafetensors.open(index)) {
            assertThatThrownBy(() -> sharded.tensor("conv_in.weights"))
                    .isInstanceOf(SafetensorsException.class)
                    .hasMessageContaining("closest: 'conv_in.weight'");
        }
    }

    @Test
    void indexWithoutWeightMap() throws Exception {
        Files.writeString(index, "{\"metadata\": {}}");
        assertThatThrownBy(() -> ShardedSafetensors.open(index))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining(index + ": index has no 'weight_map' object");
    }

    @Test
    void indexNotJson() throws Exception {
        Files.writeString(index, "{\"weight_map\": {");
        assertThatThrownBy(() -> ShardedSafetensors.open(index))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining("index is not valid JSON");
    }

    @Test
    void deeplyNestedIndex() throws Exception {
        writeIndex("\"conv_in.weight\": " + "[".repeat(10_000) + "]".repeat(10_000));
        assertThatThrownBy(() -> ShardedSafetensors.open(index))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining(index + ": index nests more than 8 levels deep, at $.weight_map.conv_in.weight")
                .message().hasSizeLessThan(1_000);
    }

    @Test
    void quotedInputIsCutShort() throws Exception {
        writeIndex("\"" + "w".repeat(1_000_000) + "\": [\"" + "s".repeat(1_000_000) + "\"]");
        assertThatThrownBy(() -> ShardedSafetensors.open(index))
                .isInstanceOf(SafetensorsException.class)
                .hasMessageContaining("(1000000 characters)' maps to")
                .message().hasSizeLessThan(1_000);
    }
}
