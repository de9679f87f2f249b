package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.tensor.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Turns a prompt into the denoiser's text inputs, one implementation per {@link PipelineFamily}.
 * Tensors are float32 with batch 1; the pipeline stacks them over the batch.
 */
interface TextConditioner extends AutoCloseable {

    /**
     * The denoiser inputs for {@code prompt} when generating {@code width}×{@code height} images;
     * {@code negative} says it is the guidance's negative prompt (SDXL may zero an empty one).
     */
    Map<String, Tensor> condition(String prompt, boolean negative, int width, int height);

    /** The prompt caches' hits and misses so far, summed over the encoders (one lookup per encoder and prompt). */
    PromptCache.Stats cacheStats();

    @Override
    void close();

    /** SD 1.x/2.x: the text encoder's last hidden state. */
    static TextConditioner sd(ClipTextEncoder encoder) {
        return new TextConditioner() {
            @Override
            public Map<String, Tensor> condition(String prompt, boolean negative, int width, int height) {
                return Map.of("encoder_hidden_states", encoder.output(prompt, "last_hidden_state"));
            }

            @Override
            public PromptCache.Stats cacheStats() {
                return encoder.cacheStats();
            }

            @Override
            public void close() {
                encoder.close();
            }
        };
    }

    /**
     * SDXL: both encoders' penultimate hidden states side by side, the second encoder's projected
     * pooled output, and the size conditioning (original size, crop origin, target size) — here the
     * generated size with no crop, as diffusers' defaults.
     */
    static TextConditioner sdxl(ClipTextEncoder first, ClipTextEncoder second, boolean zerosForEmptyNegative) {
        return new TextConditioner() {
            @Override
            public Map<String, Tensor> condition(String prompt, boolean negative, int width, int height) {
                Tensor context = FloatTensors.concat(List.of(first.output(prompt, "hidden_states_penultimate"),
                        second.output(prompt, "hidden_states_penultimate")), 2);
                Tensor pooled = second.output(prompt, "text_embeds");
                if (negative && prompt.isEmpty() && zerosForEmptyNegative) {
                    context = FloatTensors.zerosLike(context);
                    pooled = FloatTensors.zerosLike(pooled);
                }
                Tensor timeIds = FloatTensors.scalarRow(height, width, 0, 0, height, width);
                return Map.of("encoder_hidden_states", context, "text_embeds", pooled, "time_ids", timeIds);
            }

            @Override
            public PromptCache.Stats cacheStats() {
                return first.cacheStats().plus(second.cacheStats());
            }

            @Override
            public void close() {
                first.close();
                second.close();
            }
        };
    }

    /**
     * SD3 without T5: both CLIP encoders' penultimate states side by side, zero-padded to the
     * transformer's {@code jointDim}, then {@code t5Tokens} zero tokens where T5's would be; pooled
     * input is both projected pooled outputs side by side.
     */
    static TextConditioner sd3(ClipTextEncoder first, ClipTextEncoder second, long jointDim, int t5Tokens) {
        return new TextConditioner() {
            @Override
            public Map<String, Tensor> condition(String prompt, boolean negative, int width, int height) {
                Tensor clip = FloatTensors.concat(List.of(first.output(prompt, "hidden_states_penultimate"),
                        second.output(prompt, "hidden_states_penultimate")), 2);
                long clipDim = clip.shape()[2];
                if (clipDim > jointDim) {
                    throw new IllegalStateException("the CLIP encoders give " + clipDim + " channels together, more than the"
                            + " transformer's " + jointDim + " (joint_attention_dim)");
                }
                if (clipDim < jointDim) {
                    clip = FloatTensors.concat(List.of(clip, FloatTensors.zerosLike(clip, 2, jointDim - clipDim)), 2);
                }
                Tensor context = t5Tokens == 0 ? clip
                        : FloatTensors.concat(List.of(clip, FloatTensors.zerosLike(clip, 1, t5Tokens)), 1);
                Tensor pooled = FloatTensors.concat(List.of(first.output(prompt, "text_embeds"),
                        second.output(prompt, "text_embeds")), 1);
                return Map.of("encoder_hidden_states", context, "pooled_projections", pooled);
            }

            @Override
            public PromptCache.Stats cacheStats() {
                return first.cacheStats().plus(second.cacheStats());
            }

            @Override
            public void close() {
                first.close();
                second.close();
            }
        };
    }
}
