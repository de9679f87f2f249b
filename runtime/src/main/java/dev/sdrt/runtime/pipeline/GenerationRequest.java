package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.image.RgbImage;
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
 */
public record GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, long seed,
        int width, int height, int batchSize, String scheduler, int deepCacheInterval, boolean deepCacheNonUniform,
        RgbImage initImage, double strength) {

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
    }

    public static GenerationRequest of(String prompt) {
        return new GenerationRequest(prompt, "", 25, 7.5, 0, 0, 0, 1, null, 1, false, null, DEFAULT_STRENGTH);
    }

    public GenerationRequest withNegativePrompt(String negative) {
        return new GenerationRequest(prompt, negative, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    public GenerationRequest withSteps(int n) {
        return new GenerationRequest(prompt, negativePrompt, n, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    public GenerationRequest withGuidanceScale(double g) {
        return new GenerationRequest(prompt, negativePrompt, steps, g, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    public GenerationRequest withSeed(long s) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, s, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    public GenerationRequest withSize(int w, int h) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, w, h, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    public GenerationRequest withBatchSize(int n) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, n, scheduler,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    /** A scheduler by name; null for the pipeline family's default. */
    public GenerationRequest withScheduler(String name) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, name,
                deepCacheInterval, deepCacheNonUniform, initImage, strength);
    }

    /** DeepCache every {@code interval} steps (1 = off), evenly or denser around the centre step. */
    public GenerationRequest withDeepCache(int interval, boolean nonUniform) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                interval, nonUniform, initImage, strength);
    }

    /** Image to image from {@code image} (null: back to text to image) with {@code strength} in (0, 1]. */
    public GenerationRequest withInitImage(RgbImage image, double newStrength) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                deepCacheInterval, deepCacheNonUniform, image, newStrength);
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
