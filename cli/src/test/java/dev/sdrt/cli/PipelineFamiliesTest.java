package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.exportRandomPipeline;
import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.exporter.pipeline.CharacterTokenizerFiles;
import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SDXL and SD3 pipelines and image to image, end to end on random-weight tiny models. */
class PipelineFamiliesTest {
    @TempDir
    static Path tmp;
    static Path sd;
    static Path sdxl;
    static Path sd3;

    @BeforeAll
    static void exportPipelines() {
        sd = exportRandomPipeline(tmp, "tiny", "--seed", "3");
        sdxl = exportRandomPipeline(tmp, "tiny-sdxl", "--seed", "3");
        sd3 = exportRandomPipeline(tmp, "tiny-sd3", "--seed", "3");
    }

    private static GeneratedImage run(Path folder, GenerationRequest request) throws Exception {
        try (Pipeline p = Pipeline.open(folder, 0)) {
            return p.generate(request, (d, t) -> { });
        }
    }

    private static void assertUsable(GeneratedImage img) {
        for (float v : img.latents().toFloatArray()) {
            assertThat(Float.isFinite(v)).isTrue();
        }
        byte[] rgb = img.rgb()[0];
        boolean varies = false;
        for (int i = 3; i < rgb.length && !varies; i++) {
            varies = rgb[i] != rgb[0];
        }
        assertThat(varies).as("a constant image means the pipeline lost its input").isTrue();
    }

    @Test
    void sdxlFolderHasBothEncodersAndZeroesTheEmptyNegativePrompt() throws Exception {
        PipelineSpec spec = PipelineSpec.read(sdxl);
        assertThat(spec.family).isEqualTo("sdxl");
        assertThat(spec.textEncoder2).isNotNull();
        assertThat(spec.forceZerosForEmptyPrompt).isTrue();
        assertThat(spec.vaeScalingFactor).isEqualTo(0.13025);

        GenerationRequest r = GenerationRequest.of("a castle").withSteps(3).withSeed(7);
        GeneratedImage zeroed = run(sdxl, r);
        assertUsable(zeroed);
        assertThat(zeroed.latents().shape()).containsExactly(1, 4, 16, 16);
        // " " tokenizes like "" but is a given negative prompt, so it is encoded rather than zeroed.
        GeneratedImage encoded = run(sdxl, r.withNegativePrompt(" "));
        assertThat(encoded.latents().toFloatArray()).isNotEqualTo(zeroed.latents().toFloatArray());

        spec.forceZerosForEmptyPrompt = false;
        spec.write(sdxl);
        try {
            assertThat(run(sdxl, r).latents().toFloatArray()).isEqualTo(encoded.latents().toFloatArray());
        } finally {
            spec.forceZerosForEmptyPrompt = true;
            spec.write(sdxl);
        }
    }

    @Test
    void sdxlSizeConditioningChangesWithTheSize() throws Exception {
        // time_ids carry the size: the same noise region at another size is denoised differently.
        GeneratedImage a = run(sdxl, GenerationRequest.of("x").withSteps(2).withGuidanceScale(1).withSize(32, 32));
        GeneratedImage b = run(sdxl, GenerationRequest.of("x").withSteps(2).withGuidanceScale(1).withSize(48, 32));
        assertThat(a.latents().shape()).containsExactly(1, 4, 16, 16);
        assertThat(b.latents().shape()).containsExactly(1, 4, 16, 24);
    }

    @Test
    void sd3RunsWithFlowMatchingByDefault() throws Exception {
        PipelineSpec spec = PipelineSpec.read(sd3);
        assertThat(spec.family).isEqualTo("sd3");
        assertThat(spec.denoiser()).isEqualTo("transformer.onnx");
        assertThat(spec.latentChannels).isEqualTo(16);
        assertThat(spec.vaeShiftFactor).isEqualTo(0.0609);

        GeneratedImage img = run(sd3, GenerationRequest.of("a boat").withSteps(3).withNegativePrompt("blurry"));
        assertUsable(img);
        assertThat(img.parameters()).containsEntry("scheduler", "flow-euler").containsEntry("pipeline", "sd3 text-to-image");
        assertThat(img.latents().shape()).containsExactly(1, 16, 16, 16);
        assertThat(run(sd3, GenerationRequest.of("a boat").withSteps(3).withNegativePrompt("blurry")).latents().toFloatArray())
                .as("same seed, same latents").isEqualTo(img.latents().toFloatArray());
        assertThat(run(sd3, GenerationRequest.of("a ship").withSteps(3).withNegativePrompt("blurry")).latents().toFloatArray())
                .as("the prompt reaches the transformer").isNotEqualTo(img.latents().toFloatArray());
    }

    @Test
    void sd3RefusesNoisePredictionSchedulersAndSizesPastItsPositionEmbedding() throws Exception {
        try (Pipeline p = Pipeline.open(sd3, 0)) {
            assertThatThrownBy(() -> p.generate(GenerationRequest.of("x").withSteps(1).withScheduler("euler"), (d, t) -> { }))
                    .hasMessageContaining("'euler' samples noise- or v-prediction models").hasMessageEndingWith("choose one of flow-euler");
            // tiny-sd3's position table covers 96 patches of 2 latent pixels: 384 image pixels
            assertThatThrownBy(() -> p.generate(GenerationRequest.of("x").withSteps(1).withSize(400, 32), (d, t) -> { }))
                    .hasMessageContaining("at most 384");
        }
        CliTest.Result r = sdrt("generate", "--model", sd3.toString(), "--prompt", "x", "--scheduler", "ddim", "--steps", "1",
                "--out", tmp.resolve("ddim.png").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("flow-euler");
    }

    @Test
    void sd3RefusesDeepCache() {
        CliTest.Result r = sdrt("export-pipeline", "--arch", "tiny-sd3", "--random-weights", "--deepcache-branch", "0",
                "--out", tmp.resolve("no").toString());
        assertThat(r.code()).isNotZero();
        assertThat(r.err()).contains("needs a UNet");
    }

    @Test
    void imageToImageRunsTheTailOfTheScheduleFromTheEncodedPicture() throws Exception {
        RgbImage picture = gradient(32, 32);
        for (Path folder : List.of(sd, sdxl, sd3)) {
            for (String scheduler : folder == sd3 ? List.of("flow-euler") : List.of("euler", "ddim", "dpm++2m", "euler-a")) {
                List<Integer> totals = new ArrayList<>();
                GenerationRequest r = GenerationRequest.of("a house").withSteps(10).withScheduler(scheduler)
                        .withInitImage(picture, 0.35);
                GeneratedImage img;
                try (Pipeline p = Pipeline.open(folder, 0)) {
                    img = p.generate(r, (d, t) -> totals.add(t));
                }
                assertUsable(img);
                assertThat(img.timings().steps()).as("floor(10 * 0.35) steps").isEqualTo(3);
                assertThat(totals).containsOnly(3);
                assertThat(img.parameters()).containsEntry("strength", "0.35");
                assertThat(img.width()).isEqualTo(32);
            }
        }
    }

    @Test
    void lowerStrengthStaysCloserToThePicture() throws Exception {
        // Fewer steps from a less noisy start: the final latents lie nearer the picture's own latents.
        RgbImage picture = gradient(32, 32);
        GenerationRequest r = GenerationRequest.of("").withSteps(20).withGuidanceScale(1).withScheduler("euler");
        float[] clean = run(sd, r.withInitImage(picture, 0.05)).latents().toFloatArray();
        float[] light = run(sd, r.withInitImage(picture, 0.3)).latents().toFloatArray();
        float[] heavy = run(sd, r.withInitImage(picture, 1.0)).latents().toFloatArray();
        assertThat(distance(light, clean)).isLessThan(distance(heavy, clean));
    }

    @Test
    void imageToImageErrorsAreClear() throws Exception {
        RgbImage picture = gradient(32, 32);
        try (Pipeline p = Pipeline.open(sd, 0)) {
            assertThatThrownBy(() -> p.generate(GenerationRequest.of("x").withSteps(10).withInitImage(picture, 0.05), (d, t) -> { }))
                    .hasMessageContaining("runs no denoising step");
        }
        assertThatThrownBy(() -> GenerationRequest.of("x").withSize(64, 64).withInitImage(picture, 0.5))
                .hasMessageContaining("32x32").hasMessageContaining("64x64");
        PipelineSpec spec = PipelineSpec.read(sd);
        String encoder = spec.vaeEncoder;
        spec.vaeEncoder = null;
        spec.write(sd);
        try (Pipeline p = Pipeline.open(sd, 0)) {
            assertThatThrownBy(() -> p.generate(GenerationRequest.of("x").withInitImage(picture, 0.5), (d, t) -> { }))
                    .hasMessageContaining("no VAE encoder");
        } finally {
            spec.vaeEncoder = encoder;
            spec.write(sd);
        }
    }

    @Test
    void generateTakesAnInitImageFromTheCommandLine() throws Exception {
        Path init = tmp.resolve("init.png");
        BufferedImage source = new BufferedImage(40, 24, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 24; y++) {
            for (int x = 0; x < 40; x++) {
                source.setRGB(x, y, (x * 6) << 16 | (y * 10) << 8 | 128);
            }
        }
        ImageIO.write(source, "png", init.toFile());
        Path out = tmp.resolve("i2i.png");
        CliTest.Result r = sdrt("generate", "--model", sdxl.toString(), "--prompt", "a fox", "--steps", "4", "--init-image",
                init.toString(), "--strength", "0.5", "--size", "32x32", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("VAE encoder").contains("2 steps");
        BufferedImage written = ImageIO.read(out.toFile());
        assertThat(written.getWidth()).isEqualTo(32);
        assertThat(new String(Files.readAllBytes(out), java.nio.charset.StandardCharsets.ISO_8859_1)).contains("image-to-image");
    }

    @Test
    void exportsAPipelineFromADiffusersFolder() throws Exception {
        // A diffusers SD layout put together from the torch-written fixtures (their weights, their configs).
        Path source = tmp.resolve("diffusers-sd");
        copy(Fixtures.model("tiny_sd_unet"), source.resolve("unet"));
        copy(Fixtures.model("tiny_clip_text"), source.resolve("text_encoder"));
        copy(Fixtures.model("tiny_vae_decoder"), source.resolve("vae"));
        CharacterTokenizerFiles.write(source.resolve("tokenizer"));
        Files.createDirectories(source.resolve("scheduler"));
        Files.writeString(source.resolve("scheduler/scheduler_config.json"),
                "{\"_class_name\": \"DDIMScheduler\", \"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085,"
                        + " \"beta_end\": 0.012, \"num_train_timesteps\": 1000}");
        Files.writeString(source.resolve("model_index.json"), "{\"_class_name\": \"StableDiffusionPipeline\"}");

        Path out = tmp.resolve("from-diffusers");
        CliTest.Result r = sdrt("export-pipeline", "--from", source.toString(), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("vae-encoder");
        PipelineSpec spec = PipelineSpec.read(out);
        assertThat(spec.family).isEqualTo("sd");
        assertThat(spec.vaeEncoder).isEqualTo("vae_encoder.onnx");
        GeneratedImage img = run(out, GenerationRequest.of("a tree").withSteps(3).withScheduler("ddim"));
        assertUsable(img);
        assertUsable(run(out, GenerationRequest.of("a tree").withSteps(4).withInitImage(gradient(32, 32), 0.5)));

        Files.writeString(source.resolve("model_index.json"), "{\"_class_name\": \"KandinskyPipeline\"}");
        CliTest.Result refused = sdrt("export-pipeline", "--from", source.toString(), "--out", tmp.resolve("k").toString());
        assertThat(refused.code()).isNotZero();
        assertThat(refused.err()).contains("KandinskyPipeline").contains("not supported");
    }

    private static void copy(Path from, Path to) throws Exception {
        Files.createDirectories(to);
        for (String name : List.of("config.json", "diffusion_pytorch_model.safetensors", "model.safetensors")) {
            if (Files.exists(from.resolve(name))) {
                Files.copy(from.resolve(name), to.resolve(name));
            }
        }
    }

    private static RgbImage gradient(int w, int h) {
        byte[] rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = (y * w + x) * 3;
                rgb[p] = (byte) (x * 255 / w);
                rgb[p + 1] = (byte) (y * 255 / h);
                rgb[p + 2] = (byte) 60;
            }
        }
        return new RgbImage(w, h, rgb);
    }

    private static double distance(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - b[i]) * (double) (a[i] - b[i]);
        }
        return Math.sqrt(s);
    }
}
