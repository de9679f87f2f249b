package dev.sdrt.exporter.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.exporter.safetensors.TestFixtures;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DiffusersConfigTest {
    @TempDir
    Path dir;

    private DiffusersConfig write(String json) throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, json);
        return DiffusersConfig.load(dir);
    }

    @Test
    void classNamesOfAllFixtures() throws Exception {
        assertThat(DiffusersConfig.load(TestFixtures.folder("tiny_sd_unet")).className()).isEqualTo("UNet2DConditionModel");
        assertThat(DiffusersConfig.load(TestFixtures.folder("tiny_sdxl_unet")).className()).isEqualTo("UNet2DConditionModel");
        assertThat(DiffusersConfig.load(TestFixtures.folder("tiny_vae_decoder")).className()).isEqualTo("AutoencoderKL");
        assertThat(DiffusersConfig.load(TestFixtures.folder("tiny_clip_text")).className()).isEqualTo("CLIPTextModel");
        assertThat(DiffusersConfig.load(TestFixtures.folder("tiny_sd3_transformer")).className())
                .isEqualTo("SD3Transformer2DModel");
    }

    @Test
    void readsUnetSettings() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(TestFixtures.folder("tiny_sd_unet").resolve("config.json"));
        List<Integer> blockOutChannels = config.requireIntList("block_out_channels");
        assertThat(blockOutChannels).containsExactly(32, 64);
        assertThat(config.requireInt("in_channels")).isEqualTo(4);
        // A single integer stands for every block.
        assertThat(config.requireIntList("attention_head_dim", blockOutChannels.size())).containsExactly(8, 8);
        assertThat(config.getIntList("transformer_layers_per_block", 2)).contains(List.of(1, 1));
        assertThat(config.requireStringList("down_block_types")).containsExactly("CrossAttnDownBlock2D", "DownBlock2D");
        assertThat(config.requireString("act_fn")).isEqualTo("silu");
        assertThat(config.requireDouble("norm_eps")).isEqualTo(1e-5);
        assertThat(config.getDouble("mid_block_scale_factor", 0)).isEqualTo(1.0);
        assertThat(config.requireBoolean("flip_sin_to_cos")).isTrue();
        assertThat(config.getBoolean("use_linear_projection", true)).isFalse();
    }

    @Test
    void readsSdxlPerBlockLists() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(TestFixtures.folder("tiny_sdxl_unet"));
        assertThat(config.requireIntList("attention_head_dim", 2)).containsExactly(2, 4);
        assertThat(config.requireIntList("transformer_layers_per_block", 2)).containsExactly(1, 2);
        assertThat(config.getString("addition_embed_type", null)).isEqualTo("text_time");
        assertThat(config.getInt("projection_class_embeddings_input_dim", 0)).isEqualTo(80);
        assertThatThrownBy(() -> config.requireIntList("attention_head_dim", 3))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(config.file().toString())
                .hasMessageContaining("'attention_head_dim' has 2 entries [2, 4] where 3 are expected");
    }

    @Test
    void nullMeansAbsent() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(TestFixtures.folder("tiny_sd_unet"));
        assertThat(config.has("num_attention_heads")).isFalse();
        assertThat(config.getInt("num_attention_heads", 8)).isEqualTo(8);
        assertThat(config.getString("addition_embed_type", "none")).isEqualTo("none");
        assertThat(config.getIntList("num_attention_heads")).isEmpty();
        assertThatThrownBy(() -> config.requireInt("num_attention_heads"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("required key 'num_attention_heads' is null");
    }

    @Test
    void readsVaeClipAndSd3Settings() throws Exception {
        DiffusersConfig vae = DiffusersConfig.load(TestFixtures.folder("tiny_vae_decoder"));
        assertThat(vae.requireDouble("scaling_factor")).isEqualTo(0.18215);
        assertThat(vae.getBoolean("force_upcast", false)).isTrue();
        assertThat(vae.has("shift_factor")).isFalse();

        DiffusersConfig clip = DiffusersConfig.load(TestFixtures.folder("tiny_clip_text"));
        assertThat(clip.requireInt("hidden_size")).isEqualTo(32);
        assertThat(clip.requireString("hidden_act")).isEqualTo("quick_gelu");
        assertThat(clip.requireInt("eos_token_id")).isEqualTo(2);

        DiffusersConfig sd3 = DiffusersConfig.load(TestFixtures.folder("tiny_sd3_transformer"));
        assertThat(sd3.requireIntList("dual_attention_layers")).isEmpty();
        assertThat(sd3.requireInt("patch_size")).isEqualTo(2);
        assertThat(sd3.getString("qk_norm", null)).isNull();
    }

    @Test
    void missingKeyNamesFileAndKey() throws Exception {
        DiffusersConfig config = DiffusersConfig.load(TestFixtures.folder("tiny_vae_decoder"));
        assertThatThrownBy(() -> config.requireInt("cross_attention_dim"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(config.file().toString())
                .hasMessageContaining("required key 'cross_attention_dim' is missing");
        assertThat(config.getStringList("cross_attention_dim")).isEqualTo(Optional.empty());
    }

    @Test
    void wrongTypesAreErrorsEvenWithDefaults() throws Exception {
        DiffusersConfig config = write("""
                {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "flag": 1, "sizes": [1, "2"],
                 "names": ["a", 3], "eps": "small", "layers": 2.5, "channels": 4.0, "huge": 3000000000}
                """);
        assertThatThrownBy(() -> config.getInt("act_fn", 0))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(config.file() + ": 'act_fn' should be an integer but is \"silu\"");
        assertThatThrownBy(() -> config.getBoolean("flag", false))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'flag' should be true or false but is 1");
        assertThatThrownBy(() -> config.requireIntList("sizes"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'sizes' should be an integer but is \"2\"");
        assertThatThrownBy(() -> config.requireStringList("names"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'names' should be a string but is 3");
        assertThatThrownBy(() -> config.requireStringList("act_fn"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'act_fn' should be a list");
        assertThatThrownBy(() -> config.getDouble("eps", 1e-6))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'eps' should be a number");
        assertThatThrownBy(() -> config.requireInt("layers"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'layers' should be an integer but is 2.5");
        assertThatThrownBy(() -> config.requireInt("huge"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'huge' should be an integer");
        assertThatThrownBy(() -> config.requireString("flag"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'flag' should be a string");
        assertThat(config.requireInt("channels")).isEqualTo(4);
    }

    @Test
    void classNameFallsBackToModelType() throws Exception {
        assertThat(write("{\"model_type\": \"clip_text_model\"}").className()).isEqualTo("clip_text_model");
        assertThat(write("{\"architectures\": [], \"model_type\": \"t5\"}").className()).isEqualTo("t5");
        DiffusersConfig anonymous = write("{\"in_channels\": 4}");
        assertThatThrownBy(anonymous::className)
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(anonymous.file() + ": names no model class");
    }

    @Test
    void malformedFiles() throws Exception {
        assertThatThrownBy(() -> write("{\"in_channels\": 4,"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(dir.resolve("config.json") + ": not valid JSON");
        assertThatThrownBy(() -> write("[4]"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(dir.resolve("config.json") + ": not a JSON object");
    }

    @Test
    void folderWithoutConfig() {
        assertThatThrownBy(() -> DiffusersConfig.load(dir)).isInstanceOf(NoSuchFileException.class)
                .hasMessageContaining("config.json");
    }

    @Test
    void jsonIsACopy() throws Exception {
        DiffusersConfig config = write("{\"in_channels\": 4}");
        config.json().addProperty("in_channels", 8);
        assertThat(config.requireInt("in_channels")).isEqualTo(4);
    }

    @Test
    void rangeCheckedIntegers() throws Exception {
        DiffusersConfig config = write("""
                {"layers": 2, "float_two": 2.0, "half": 2.5, "negative": -1, "huge": 1e300, "text": "2",
                 "digits": %s, "sizes": [32, 0], "per_block": 3}
                """.formatted("9".repeat(1_000)));
        assertThat(config.intInRange("layers", 7, 1, 4)).isEqualTo(2);
        assertThat(config.intInRange("absent", 7, 1, 4)).isEqualTo(7);
        assertThat(config.size("float_two", 1)).isEqualTo(2);
        assertThatThrownBy(() -> config.layerCount("negative", 1))
                .isInstanceOf(ConfigException.class)
                .hasMessage(config.file() + ": 'negative' is -1; it must be an integer in [1, 1024]");
        assertThatThrownBy(() -> config.size("huge", 1))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'huge' is 1e300; it must be an integer in [1, 1048576]");
        assertThatThrownBy(() -> config.size("half", 1))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'half' should be an integer in [1, 1048576] but is 2.5");
        assertThatThrownBy(() -> config.size("text", 1))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'text' should be an integer");
        assertThatThrownBy(() -> config.size("digits", 1))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("(1000 characters)")
                .message().hasSizeLessThan(1_000);
        assertThatThrownBy(() -> config.intList("sizes", List.of(1), 4, 1, 64))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'sizes[1]' is 0; it must be an integer in [1, 64]");
        assertThat(config.perBlock("per_block", 3, 1, 1, 4)).containsExactly(3, 3, 3);
        assertThat(config.perBlock("absent", 2, 1, 1, 4)).containsExactly(1, 1);
        assertThatThrownBy(() -> config.perBlock("sizes", 3, 1, 0, 64))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'sizes' has 2 entries [32,0] where 3 are expected");
    }

    @Test
    void rangeCheckedNumbers() throws Exception {
        DiffusersConfig config = write("""
                {"eps": 1e-6, "zero": 0, "negative": -1e-5, "infinite": 1e400, "nan": NaN, "shift": 1.5}
                """);
        assertThat(config.positiveNumber("eps", 1)).isEqualTo(1e-6);
        assertThat(config.positiveNumber("absent", 0.5)).isEqualTo(0.5);
        for (String key : List.of("zero", "negative", "infinite")) {
            assertThatThrownBy(() -> config.positiveNumber(key, 1))
                    .isInstanceOf(ConfigException.class)
                    .hasMessageContaining("'" + key + "' is ")
                    .hasMessageContaining("; it must be a finite number greater than 0");
        }
        // the lenient parser reads NaN as a string, so it is a value of the wrong type
        assertThatThrownBy(() -> config.positiveNumber("nan", 1))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'nan' should be a number but is \"NaN\"");
        assertThatThrownBy(() -> config.numberInRange("shift", 0, 0, 1))
                .isInstanceOf(ConfigException.class).hasMessageContaining("'shift' is 1.5; it must be a number in [0.0, 1.0]");
    }

    /** Printing or copying a 10,000-deep value recursed once per level, and overflowed the stack. */
    @Test
    void deeplyNestedValueIsRefusedWhenParsed() {
        String deep = "[".repeat(10_000) + "]".repeat(10_000);
        assertThatThrownBy(() -> write("{\"_class_name\": \"UNet2DConditionModel\", \"layers_per_block\": " + deep + "}"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("config.json: nests more than 32 levels deep, at $.layers_per_block[0][0]")
                .message().hasSizeLessThan(1_000);
    }

    @Test
    void quotedValuesAreCutShort() throws Exception {
        DiffusersConfig config = write("{\"act_fn\": \"" + "x".repeat(1_000_000) + "\", \"list\": ["
                + "1,".repeat(500_000) + "1]}");
        assertThatThrownBy(() -> config.requireInt("act_fn"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("(1000002 characters)")
                .message().hasSizeLessThan(1_000);
        assertThatThrownBy(() -> config.requireIntList("list", 3))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'list' has 500001 entries")
                .message().hasSizeLessThan(1_000);
    }

    @Test
    void fileTooLargeForAConfig() throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, "{\"pad\": \"" + " ".repeat(10_000_000) + "\"}");
        assertThatThrownBy(() -> DiffusersConfig.load(dir))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(file + ": is 10000011 bytes, more than the 10000000 a model config can be");
    }
}
