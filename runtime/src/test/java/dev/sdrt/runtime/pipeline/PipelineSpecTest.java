package dev.sdrt.runtime.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class PipelineSpecTest {

    /** The tiny SD pipeline's numbers: VAE factor 2, two UNet levels with 8 heads, the VAE's mid-block attention. */
    private static PipelineSpec tiny() {
        PipelineSpec spec = new PipelineSpec();
        spec.vaeScaleFactor = 2;
        spec.latentSizeMultiple = 2;
        spec.attention = List.of(new PipelineSpec.Attention("denoiser", 8, 1, 0), new PipelineSpec.Attention("denoiser", 8, 2, 0),
                new PipelineSpec.Attention("vae_decoder", 1, 1, 0), new PipelineSpec.Attention("vae_encoder", 1, 1, 0));
        return spec;
    }

    @Test
    void sizesMustFitTheUnetsDownsamplingNotOnlyTheVae() {
        PipelineSpec spec = tiny();
        assertThat(spec.sizeMultiple()).isEqualTo(4);
        assertThat(spec.sizeProblem(32, 48)).isNull();
        assertThat(spec.sizeProblem(30, 30)).contains("multiples of 4 (VAE scale factor 2 × UNet downsampling 2)")
                .contains("got 30x30").endsWith("the nearest sizes that fit are 28x28 and 32x32");
        assertThat(spec.sizeProblem(2, 32)).endsWith("the nearest size that fits is 4x32");
    }

    @Test
    void aFolderWithoutTheDenoisersMultipleChecksTheVaeFactorAlone() {
        PipelineSpec spec = tiny();
        spec.latentSizeMultiple = 0;
        assertThat(spec.sizeProblem(30, 30)).isNull();
        assertThat(spec.sizeProblem(33, 30)).contains("multiples of 2 (the VAE scale factor)");
    }

    @Test
    void aTransformersPositionEmbeddingBoundsTheSize() {
        PipelineSpec spec = new PipelineSpec();
        spec.family = "sd3";
        spec.transformer = "transformer.onnx";
        spec.vaeScaleFactor = 2;
        spec.latentSizeMultiple = 2;
        spec.maxLatentSize = 192;
        assertThat(spec.sizeProblem(384, 64)).isNull();
        assertThat(spec.sizeProblem(400, 64)).contains("transformer patch size 2").contains("at most 384")
                .endsWith("the nearest size that fits is 384x64");
    }

    @Test
    void theLargestScoresAreTheFullResolutionLevelsWithGuidanceDoublingTheBatch() {
        PipelineSpec spec = tiny();
        // 512x512: 256x256 latent pixels, one token each
        PipelineSpec.AttentionScores scores = spec.largestAttentionScores(512, 512, 1, true, false, 4, component -> true);
        assertThat(scores.component()).isEqualTo("denoiser");
        assertThat(scores.batch()).isEqualTo(2);
        assertThat(scores.heads()).isEqualTo(8);
        assertThat(scores.tokens()).isEqualTo(65_536);
        assertThat(scores.bytes()).isEqualTo(256L << 30);
        // on a device only the VAE encoder runs on the host: one image, one head
        PipelineSpec.AttentionScores encoder = spec.largestAttentionScores(512, 512, 1, true, true, 4,
                component -> component.equals("vae_encoder"));
        assertThat(encoder.component()).isEqualTo("vae_encoder");
        assertThat(encoder.bytes()).isEqualTo(16L << 30);
        assertThat(spec.largestAttentionScores(512, 512, 1, true, false, 4, component -> component.equals("vae_encoder")))
                .as("text to image encodes nothing").isNull();
        spec.attention = null;
        assertThat(spec.largestAttentionScores(512, 512, 1, true, false, 4, component -> true)).as("an older folder").isNull();
    }
}
