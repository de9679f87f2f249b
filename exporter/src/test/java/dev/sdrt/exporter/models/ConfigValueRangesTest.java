package dev.sdrt.exporter.models;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.config.ConfigException;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.safetensors.TestFixtures;
import dev.sdrt.exporter.weights.RandomWeights;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Each config value that makes no sense, in a fixture's otherwise valid config, exported with random weights:
 * the export fails with a ConfigException naming the key, the value and what it must be. Before, most of these
 * exported a graph that computes nonsense (a negative epsilon, no layers, an end-of-text id no token has), and
 * some died with a bare "/ by zero".
 */
class ConfigValueRangesTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}: {1} = {2}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            tiny_sd_unet         | norm_eps                     | -1         | 'norm_eps' is -1; it must be a finite number greater than 0
            tiny_sd_unet         | norm_eps                     | 0          | 'norm_eps' is 0; it must be a finite number greater than 0
            tiny_sd_unet         | norm_eps                     | 1e400      | 'norm_eps' is 1e400; it must be a finite number greater than 0
            tiny_sd_unet         | layers_per_block             | -1         | 'layers_per_block' is -1; it must be an integer in [1, 1024]
            tiny_sd_unet         | layers_per_block             | 0          | 'layers_per_block' is 0; it must be an integer in [1, 1024]
            tiny_sd_unet         | layers_per_block             | [2, 0]     | 'layers_per_block[1]' is 0; it must be an integer in [1, 1024]
            tiny_sd_unet         | layers_per_block             | 1e300      | 'layers_per_block' is 1e300; it must be an integer in [1, 1024]
            tiny_sd_unet         | transformer_layers_per_block | 0          | 'transformer_layers_per_block' is 0; it must be an integer in [1, 1024]
            tiny_sd_unet         | attention_head_dim           | -1         | 'attention_head_dim' is -1; it must be an integer in [1, 1048576]
            tiny_sd_unet         | attention_head_dim           | 0          | 'attention_head_dim' is 0; it must be an integer in [1, 1048576]
            tiny_sd_unet         | num_attention_heads          | [0, 8]     | 'num_attention_heads[0]' is 0; it must be an integer in [1, 1048576]
            tiny_sd_unet         | norm_num_groups              | 0          | 'norm_num_groups' is 0; it must be a positive integer that divides every block's channel count (block_out_channels [32, 64])
            tiny_sd_unet         | norm_num_groups              | -32        | 'norm_num_groups' is -32; it must be a positive integer that divides every block's channel count
            tiny_sd_unet         | norm_num_groups              | 3          | 'norm_num_groups' is 3; it must be a positive integer that divides every block's channel count
            tiny_sd_unet         | block_out_channels           | []         | 'block_out_channels' is []; it must be a list of 1 to 16 integers
            tiny_sd_unet         | block_out_channels           | [32, -64]  | 'block_out_channels[1]' is -64; it must be an integer in [1, 1048576]
            tiny_sd_unet         | in_channels                  | 0          | 'in_channels' is 0; it must be an integer in [1, 1048576]
            tiny_sd_unet         | out_channels                 | 2147483648 | 'out_channels' is 2147483648; it must be an integer in [1, 1048576]
            tiny_sd_unet         | cross_attention_dim          | -32        | 'cross_attention_dim' is -32; it must be an integer in [1, 1048576]
            tiny_sd_unet         | time_embedding_dim           | 0          | 'time_embedding_dim' is 0; it must be an integer in [1, 1048576]
            tiny_sd_unet         | conv_in_kernel               | 2          | 'conv_in_kernel' is 2; it must be an odd integer from 1 to 31
            tiny_sd_unet         | conv_out_kernel              | -1         | 'conv_out_kernel' is -1; it must be an odd integer from 1 to 31
            tiny_sd_unet         | downsample_padding           | 5          | 'downsample_padding' is 5; it must be an integer in [0, 1]
            tiny_sd_unet         | freq_shift                   | -1         | 'freq_shift' is -1; it must be a number in [0.0, 1.0]
            tiny_sd_unet         | mid_block_scale_factor       | 0          | 'mid_block_scale_factor' is 0; it must be a finite number greater than 0
            tiny_sd_unet         | resnet_out_scale_factor      | -1.0       | 'resnet_out_scale_factor' is -1.0; it must be a finite number greater than 0
            tiny_sd_unet         | act_fn                       | `"tanh"`   | act_fn = "tanh" is not supported by sdrt's UNet2DConditionModel exporter
            tiny_sdxl_unet       | addition_time_embed_dim      | 0          | 'addition_time_embed_dim' is 0; it must be an integer in [1, 1048576]
            tiny_sdxl_unet       | projection_class_embeddings_input_dim | -80 | 'projection_class_embeddings_input_dim' is -80; it must be an integer in [1, 1048576]
            tiny_vae_decoder     | norm_num_groups              | 0          | 'norm_num_groups' is 0; it must be a positive integer that divides every block's channel count
            tiny_vae_decoder     | layers_per_block             | 0          | 'layers_per_block' is 0; it must be an integer in [1, 1024]
            tiny_vae_decoder     | latent_channels              | -4         | 'latent_channels' is -4; it must be an integer in [1, 1048576]
            tiny_vae_decoder     | out_channels                 | 0          | 'out_channels' is 0; it must be an integer in [1, 1048576]
            tiny_vae_decoder     | block_out_channels           | []         | 'block_out_channels' is []; it must be a list of 1 to 16 integers
            tiny_vae_decoder     | act_fn                       | `"tanh"`   | act_fn "tanh" is not supported by sdrt's AutoencoderKL exporter
            tiny_clip_text       | eos_token_id                 | -1         | 'eos_token_id' is -1; it must be a token id of the vocabulary, in [0, 999] (vocab_size 1000)
            tiny_clip_text       | eos_token_id                 | 1000       | 'eos_token_id' is 1000; it must be a token id of the vocabulary, in [0, 999] (vocab_size 1000)
            tiny_clip_text       | layer_norm_eps               | -1e-05     | 'layer_norm_eps' is -1e-05; it must be a finite number greater than 0
            tiny_clip_text       | num_hidden_layers            | 0          | 'num_hidden_layers' is 0; it must be an integer in [1, 1024]
            tiny_clip_text       | num_attention_heads          | -4         | 'num_attention_heads' is -4; it must be an integer in [1, 1048576]
            tiny_clip_text       | hidden_size                  | 0          | 'hidden_size' is 0; it must be an integer in [1, 1048576]
            tiny_clip_text       | intermediate_size            | -37        | 'intermediate_size' is -37; it must be an integer in [1, 1048576]
            tiny_clip_text       | vocab_size                   | 0          | 'vocab_size' is 0; it must be an integer in [1, 1048576]
            tiny_clip_text       | max_position_embeddings      | 0          | 'max_position_embeddings' is 0; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | attention_head_dim           | -8         | 'attention_head_dim' is -8; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | num_attention_heads          | 0          | 'num_attention_heads' is 0; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | patch_size                   | 0          | 'patch_size' is 0; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | patch_size                   | 32         | 'patch_size' is 32; it must be at most sample_size (16)
            tiny_sd3_transformer | sample_size                  | -16        | 'sample_size' is -16; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | num_layers                   | 0          | 'num_layers' is 0; it must be an integer in [1, 1024]
            tiny_sd3_transformer | pos_embed_max_size           | 0          | 'pos_embed_max_size' is 0; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | pos_embed_max_size           | 100000     | 'pos_embed_max_size' is 100000; it must be small enough for the position table
            tiny_sd3_transformer | joint_attention_dim          | 0          | 'joint_attention_dim' is 0; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | pooled_projection_dim        | -64        | 'pooled_projection_dim' is -64; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | in_channels                  | 0          | 'in_channels' is 0; it must be an integer in [1, 1048576]
            tiny_sd3_transformer | caption_projection_dim       | 0          | 'caption_projection_dim' is 0; it must be an integer in [1, 1048576]
            """)
    void valueOutOfRangeIsAConfigError(String fixture, String key, String jsonValue, String message) throws Exception {
        DiffusersConfig config = ExportTesting.withSetting(TestFixtures.folder(fixture), dir, key, jsonValue);
        assertThatThrownBy(() -> export(fixture, config))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(config.file() + ": " + message);
    }

    /** Each in range, but together too many blocks for a graph that fits in memory. */
    @Test
    void layerCountsThatMultiplyBeyondWhatFitsInMemory() throws Exception {
        DiffusersConfig config = ExportedModels.edited(TestFixtures.folder("tiny_sd_unet"), dir, json -> {
            json.addProperty("layers_per_block", 1000);
            json.addProperty("transformer_layers_per_block", 1000);
        });
        assertThatThrownBy(() -> export("tiny_sd_unet", config))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("layers_per_block [1000, 1000] and transformer_layers_per_block [1000, 1000] make"
                        + " 2002000 transformer blocks; sdrt exports at most 10000");
    }

    private static void export(String fixture, DiffusersConfig config) {
        RandomWeights weights = new RandomWeights(0);
        ExportOptions options = ExportOptions.defaults();
        switch (fixture) {
            case "tiny_sd_unet", "tiny_sdxl_unet" -> UNet2DConditionExporter.export(config, weights, options);
            case "tiny_vae_decoder" -> AutoencoderKLExporter.exportDecoder(config, weights, options);
            case "tiny_clip_text" -> ClipTextExporter.export(config, weights, options);
            case "tiny_sd3_transformer" -> Sd3TransformerExporter.export(config, weights, options);
            default -> throw new IllegalArgumentException("no exporter for fixture " + fixture);
        }
    }
}
