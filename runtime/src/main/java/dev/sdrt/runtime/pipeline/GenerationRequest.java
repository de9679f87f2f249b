package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.util.Objects;

/**
 * One generation request. Width and height of 0 mean the pipeline's default size (or, for image to
 * image, the initial image's size).
 *
 * @param guidanceScale classifier-free guidance; 1 or less runs the denoiser once per step without guidance
 * @param scheduler a name from {@code Schedulers.NAMES}, or null for the pipeline family's default
 * @param deepCacheInterval DeepCache: run the full UNet on one step in this many and the shallow
 *     one, with the cached deep feature, on the others; 1 turns the cache off
 * @param deepCacheNonUniform place the full steps denser around DeepCache's centre step instead of evenly
 * @param initImage image to image: the picture to start from (null for text to image); it must have
 *     the request's size when both are given
 * @param strength image to image: how much of the schedule runs, in (0, 1]; 1 ignores the image's
 *     content almost entirely, small values keep it. Ignored without an initial image.
 * @param initialLatents the standard normal draw the run starts from, in place of the one the seed
 *     gives (null: from the seed), float32 [batchSize, latent channels, height / f, width / f] with f
 *     the VAE's scale factor. The semantics are diffusers': text to image starts from
 *     {@code initialLatents × init_noise_sigma} of the scheduler (what the {@code latents=} argument of
 *     diffusers' SD, SD 2.x and SDXL pipelines does; SD3's flow matching has σ_max = 1, so the tensor is
 *     used as it is, as diffusers' SD3 pipeline does); image to image uses it as the noise that the
 *     scheduler mixes into the encoded image at the first step's noise level (the draw diffusers' image
 *     to image pipelines take from their generator). The seed still drives the fresh noise of ancestral
 *     samplers' steps, as if the seed's own starting draw had been taken.
 */
public record GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, long seed,
        int width, int height, int batchSize, String scheduler, int deepCacheInterval, boolean deepCacheNonUniform,
        RgbImage initImage, double strength, Tensor initialLatents) {

    /** diffusers' default strength for image to image. */
    public static final double DEFAULT_STRENGTH = 0.8;

    public GenerationRequest {
        if (prompt == null) {
            throw new IllegalArgumentException("prompt must not be null (use \"\" for an empty prompt)");
        }
        if (negativePrompt == null) {
            negativePrompt = "";
        }
        if (steps < 1 || steps > 1000) {
            throw new IllegalArgumentException("steps must be between 1 and 1000, not " + steps);
        }
        if (!(guidanceScale >= 0) || guidanceScale > 100) {
            throw new IllegalArgumentException("guidance scale must be between 0 and 100, not " + guidanceScale);
        }
        if (width < 0 || height < 0) {
            throw new IllegalArgumentException("width and height must not be negative");
        }
        if (batchSize < 1 || batchSize > 64) {
            throw new IllegalArgumentException("batch size must be between 1 and 64, not " + batchSize);
        }
        if (deepCacheInterval < 1 || deepCacheInterval > steps) {
            throw new IllegalArgumentException("DeepCache interval must be between 1 (off) and the step count " + steps
                    + ", not " + deepCacheInterval);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1], not " + strength);
        }
        if (initImage != null && width != 0 && height != 0 && (initImage.width() != width || initImage.height() != height)) {
            throw new IllegalArgumentException("the initial image is " + initImage.width() + "x" + initImage.height()
                    + " but the request asks for " + width + "x" + height + "; resize it first (RgbImage.resized)");
        }
        if (initialLatents != null) {
            long[] shape = initialLatents.shape();
            if (initialLatents.dtype() != DType.FLOAT32 || shape.length != 4 || shape[0] != batchSize) {
                throw new IllegalArgumentException("initial latents must be float32 [batch " + batchSize
                        + ", channels, height, width], not " + initialLatents.dtype() + " " + Tensor.formatShape(shape));
            }
        }
    }

    /** Text to image and image to image without initial latents (from the seed). */
    public GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, long seed,
            int width, int height, int batchSize, String scheduler, int deepCacheInterval, boolean deepCacheNonUniform,
            RgbImage initImage, double strength) {
        this(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler, deepCacheInterval,
                deepCacheNonUniform, initImage, strength, null);
    }

    public static GenerationRequest of(String prompt) {
        return new GenerationRequest(prompt, "", 25, 7.5, 0, 0, 0, 1, null, 1, false, null, DEFAULT_STRENGTH);
    }

    public GenerationRequest withNegativePrompt(String negative) {
        return new GenerationRequest(prompt, negative, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    public GenerationRequest withSteps(int n) {
        return new GenerationRequest(prompt, negativePrompt, n, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    public GenerationRequest withGuidanceScale(double g) {
        return new GenerationRequest(prompt, negativePrompt, steps, g, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    public GenerationRequest withSeed(long s) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, s, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    public GenerationRequest withSize(int w, int h) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, w, h, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    public GenerationRequest withBatchSize(int n) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, n, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    /** A scheduler by name; null for the pipeline family's default. */
    public GenerationRequest withScheduler(String name) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, name,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, initialLatents);
    }

    /** DeepCache every {@code interval} steps (1 = off), evenly or denser around the centre step. */
    public GenerationRequest withDeepCache(int interval, boolean nonUniform) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                interval, nonUniform, initImage, strength, initialLatents);
    }

    /** Image to image from {@code image} (null: back to text to image) with {@code strength} in (0, 1]. */
    public GenerationRequest withInitImage(RgbImage image, double newStrength) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, image, newStrength, initialLatents);
    }

    /**
     * Starts from {@code latents} (float32 [batch, channels, height / f, width / f]) instead of the
     * seed's draw; null: back to the seed. See the record's description for what they mean.
     */
    public GenerationRequest withInitialLatents(Tensor latents) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength, latents);
    }

    boolean usesGuidance() {
        return guidanceScale > 1;
    }

    /**
     * Whether this request can share one denoiser batch with {@code other}: same size, steps,
     * scheduler, guidance, feature-cache plan and (image to image) strength, so every step is the same
     * plan step for both. Prompts, seeds, image counts and initial images may differ.
     */
    public boolean batchableWith(GenerationRequest other) {
        return width == other.width && height == other.height && steps == other.steps
                && guidanceScale == other.guidanceScale && Objects.equals(scheduler, other.scheduler)
                && deepCacheInterval == other.deepCacheInterval && deepCacheNonUniform == other.deepCacheNonUniform
                && (initImage == null) == (other.initImage == null) && (initImage == null || strength == other.strength);
    }
}
