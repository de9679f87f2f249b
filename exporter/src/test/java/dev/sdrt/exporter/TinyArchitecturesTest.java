package dev.sdrt.exporter;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tiny SDXL and SD3 architectures: every component exports with random weights and runs, and each one's outputs
 * are the next one's inputs, combined as diffusers' pipelines combine them.
 */
class TinyArchitecturesTest {
    private static final long SEED = 5;
    /** Start and end of text in the character-level tokenizer of random-weight pipelines (the largest id: pooled). */
    private static final long START = 512;
    private static final long END = 513;
    private static final Tensor INPUT_IDS = promptIds(3, 17, 200, 42);

    @TempDir
    Path dir;

    @Test
    void tinySdxlComponentsPlugTogether() throws Exception {
        Exporter.Result first = Exporter.random("tiny-sdxl", Component.TEXT_ENCODER, SEED,
                ExportOptions.defaults().withPenultimateHiddenState(true));
        assertThat(outputNames(first)).containsExactly("last_hidden_state", "pooler_output", "hidden_states_penultimate");
        Exporter.Result second = Exporter.random("tiny-sdxl", Component.TEXT_ENCODER_2, SEED, ExportOptions.defaults());
        assertThat(outputNames(second))
                .containsExactly("last_hidden_state", "pooler_output", "text_embeds", "hidden_states_penultimate");

        Map<String, Tensor> firstOut = run(first, Map.of("input_ids", INPUT_IDS));
        Map<String, Tensor> secondOut = run(second, Map.of("input_ids", INPUT_IDS));
        assertThat(firstOut.get("hidden_states_penultimate").shape()).containsExactly(1, 77, 32);
        assertThat(secondOut.get("hidden_states_penultimate").shape()).containsExactly(1, 77, 32);
        assertThat(secondOut.get("text_embeds").shape()).containsExactly(1, 32);

        // the UNet's context is both penultimate states side by side; batch 2 as classifier-free guidance runs it
        Tensor context = concatLastAxis(firstOut.get("hidden_states_penultimate"), secondOut.get("hidden_states_penultimate"));
        Exporter.Result unet = Exporter.random("tiny-sdxl", Component.UNET, SEED, ExportOptions.defaults());
        Map<String, Tensor> unetOut = run(unet, Map.of(
                "sample", random(2, 4, 16, 16),
                "timestep", Tensor.ofFloats(new long[] {2}, new float[] {999, 999}),
                "encoder_hidden_states", twice(context),
                "text_embeds", twice(secondOut.get("text_embeds")),
                // original size, crop top-left, target size
                "time_ids", twice(Tensor.ofFloats(new long[] {1, 6}, new float[] {32, 32, 0, 0, 32, 32}))));
        assertThat(outputNames(unet)).containsExactly("out_sample");
        assertFinite(unetOut.get("out_sample"), 2, 4, 16, 16);

        assertVaeRoundTrip("tiny-sdxl", 4);
    }

    @Test
    void plainClipTextModelHasNoPenultimateOutputUnlessAsked() {
        Exporter.Result plain = Exporter.random("tiny-sdxl", Component.TEXT_ENCODER, SEED, ExportOptions.defaults());
        assertThat(outputNames(plain)).containsExactly("last_hidden_state", "pooler_output");
    }

    @Test
    void tinySd3ComponentsPlugTogether() throws Exception {
        Exporter.Result first = Exporter.random("tiny-sd3", Component.TEXT_ENCODER, SEED, ExportOptions.defaults());
        Exporter.Result second = Exporter.random("tiny-sd3", Component.TEXT_ENCODER_2, SEED, ExportOptions.defaults());
        Map<String, Tensor> firstOut = run(first, Map.of("input_ids", INPUT_IDS));
        Map<String, Tensor> secondOut = run(second, Map.of("input_ids", INPUT_IDS));
        for (Exporter.Result r : List.of(first, second)) {
            assertThat(outputNames(r))
                    .containsExactly("last_hidden_state", "pooler_output", "text_embeds", "hidden_states_penultimate");
        }
        for (Map<String, Tensor> out : List.of(firstOut, secondOut)) {
            assertThat(out.get("hidden_states_penultimate").shape()).containsExactly(1, 77, 16);
            assertThat(out.get("text_embeds").shape()).containsExactly(1, 32);
        }

        // the CLIP states side by side fill joint_attention_dim exactly; 16 zero tokens stand where T5's would be
        Tensor clip = concatLastAxis(firstOut.get("hidden_states_penultimate"), secondOut.get("hidden_states_penultimate"));
        Tensor context = Tensor.ofFloats(new long[] {1, 77 + 16, 32}, Arrays.copyOf(clip.toFloatArray(), (77 + 16) * 32));
        Tensor pooled = concatLastAxis(firstOut.get("text_embeds"), secondOut.get("text_embeds"));
        Exporter.Result transformer = Exporter.random("tiny-sd3", Component.TRANSFORMER, SEED, ExportOptions.defaults());
        Map<String, Tensor> transformerOut = run(transformer, Map.of(
                "hidden_states", random(2, 16, 16, 16),
                "encoder_hidden_states", twice(context),
                "pooled_projections", twice(pooled),
                "timestep", Tensor.ofFloats(new long[] {2}, new float[] {1000, 1000})));
        assertThat(outputNames(transformer)).containsExactly("sample");
        assertFinite(transformerOut.get("sample"), 2, 16, 16, 16);

        assertVaeRoundTrip("tiny-sd3", 16);
    }

    /** SD3's VAE has neither quant_conv nor post_quant_conv. */
    @Test
    void tinySd3VaeHasNoQuantConvolutions() {
        for (Component c : List.of(Component.VAE_DECODER, Component.VAE_ENCODER)) {
            assertThat(Exporter.random("tiny-sd3", c, SEED, ExportOptions.defaults()).parameters().keySet())
                    .as(c.toString()).noneMatch(name -> name.contains("quant_conv"));
        }
    }

    @Test
    void tinyArchitecturesShipEveryComponentTheirPipelineNeeds() {
        assertThat(Exporter.componentsOf("tiny-sdxl")).containsExactly(Component.UNET, Component.VAE_DECODER,
                Component.VAE_ENCODER, Component.TEXT_ENCODER, Component.TEXT_ENCODER_2);
        assertThat(Exporter.componentsOf("tiny-sd3")).containsExactly(Component.VAE_DECODER, Component.VAE_ENCODER,
                Component.TEXT_ENCODER, Component.TEXT_ENCODER_2, Component.TRANSFORMER);
        assertThat(Exporter.componentsOf("sd3-medium")).containsExactly(Component.VAE_DECODER, Component.VAE_ENCODER,
                Component.TEXT_ENCODER, Component.TEXT_ENCODER_2, Component.TRANSFORMER);
    }

    /** Decoder [1, latent, 16, 16] to the image [1, 3, 32, 32], and the encoder back to latents of that shape. */
    private void assertVaeRoundTrip(String arch, long latentChannels) throws IOException {
        Exporter.Result decoder = Exporter.random(arch, Component.VAE_DECODER, SEED, ExportOptions.defaults());
        Tensor image = run(decoder, Map.of("latent_sample", random(1, latentChannels, 16, 16))).get("sample");
        assertFinite(image, 1, 3, 32, 32);
        Exporter.Result encoder = Exporter.random(arch, Component.VAE_ENCODER, SEED, ExportOptions.defaults());
        assertFinite(run(encoder, Map.of("sample", image)).get("latent"), 1, latentChannels, 16, 16);
    }

    private Map<String, Tensor> run(Exporter.Result result, Map<String, Tensor> feeds) throws IOException {
        Path file = dir.resolve(result.component().cliName() + ".onnx");
        result.model().save(file);
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            return runner.run(feeds);
        }
    }

    private static List<String> outputNames(Exporter.Result result) {
        return result.model().graph().outputs().stream().map(Value::name).toList();
    }

    private static void assertFinite(Tensor t, long... shape) {
        assertThat(t.shape()).containsExactly(shape);
        for (float v : t.toFloatArray()) {
            assertThat(Float.isFinite(v)).as("value %s", v).isTrue();
        }
    }

    /** A prompt's 77 ids as CLIP's tokenizer lays them out: start, the tokens, end of text, padded with end of text. */
    private static Tensor promptIds(long... tokens) {
        long[] ids = new long[77];
        Arrays.fill(ids, END);
        ids[0] = START;
        System.arraycopy(tokens, 0, ids, 1, tokens.length);
        return Tensor.ofLongs(new long[] {1, 77}, ids);
    }

    /** [..., a] and [..., b] with equal leading dimensions to [..., a + b]. */
    private static Tensor concatLastAxis(Tensor x, Tensor y) {
        long[] shape = x.shape().clone();
        int a = (int) x.dim(x.rank() - 1);
        int b = (int) y.dim(y.rank() - 1);
        shape[shape.length - 1] = a + b;
        float[] xs = x.toFloatArray();
        float[] ys = y.toFloatArray();
        float[] out = new float[xs.length + ys.length];
        for (int row = 0; row < xs.length / a; row++) {
            System.arraycopy(xs, row * a, out, row * (a + b), a);
            System.arraycopy(ys, row * b, out, row * (a + b) + a, b);
        }
        return Tensor.ofFloats(shape, out);
    }

    /** A batch-1 tensor repeated into batch 2 (the negative and the positive prompt's rows). */
    private static Tensor twice(Tensor t) {
        float[] v = t.toFloatArray();
        float[] out = Arrays.copyOf(v, 2 * v.length);
        System.arraycopy(v, 0, out, v.length, v.length);
        long[] shape = t.shape().clone();
        shape[0] = 2;
        return Tensor.ofFloats(shape, out);
    }

    private static Tensor random(long... shape) {
        Random random = new Random(11);
        float[] v = new float[(int) Tensor.numElements(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return Tensor.ofFloats(shape, v);
    }
}
