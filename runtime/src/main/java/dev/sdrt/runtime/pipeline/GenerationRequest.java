package dev.sdrt.runtime.pipeline;

/**
 * One text-to-image request. Width and height of 0 mean the pipeline's default size.
 *
 * @param guidanceScale classifier-free guidance; 1 or less runs the denoiser once per step without guidance
 * @param deepCacheInterval DeepCache: run the full UNet on one step in this many and the shallow
 *     one, with the cached deep feature, on the others; 1 turns the cache off
 * @param deepCacheNonUniform place the full steps denser around DeepCache's centre step instead of evenly
 */
public record GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, long seed,
        int width, int height, int batchSize, String scheduler, int deepCacheInterval, boolean deepCacheNonUniform) {

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
        if (scheduler == null) {
            scheduler = "euler";
        }
        if (deepCacheInterval < 1 || deepCacheInterval > steps) {
            throw new IllegalArgumentException("DeepCache interval must be between 1 (off) and the step count " + steps
                    + ", not " + deepCacheInterval);
        }
    }

    public static GenerationRequest of(String prompt) {
        return new GenerationRequest(prompt, "", 25, 7.5, 0, 0, 0, 1, "euler", 1, false);
    }

    public GenerationRequest withNegativePrompt(String negative) {
        return new GenerationRequest(prompt, negative, steps, guidanceScale, seed, width, height, batchSize, scheduler, deepCacheInterval, deepCacheNonUniform);
    }

    public GenerationRequest withSteps(int n) {
        return new GenerationRequest(prompt, negativePrompt, n, guidanceScale, seed, width, height, batchSize, scheduler, deepCacheInterval, deepCacheNonUniform);
    }

    public GenerationRequest withGuidanceScale(double g) {
        return new GenerationRequest(prompt, negativePrompt, steps, g, seed, width, height, batchSize, scheduler, deepCacheInterval, deepCacheNonUniform);
    }

    public GenerationRequest withSeed(long s) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, s, width, height, batchSize, scheduler, deepCacheInterval, deepCacheNonUniform);
    }

    public GenerationRequest withSize(int w, int h) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, w, h, batchSize, scheduler, deepCacheInterval, deepCacheNonUniform);
    }

    public GenerationRequest withBatchSize(int n) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, n, scheduler, deepCacheInterval, deepCacheNonUniform);
    }

    public GenerationRequest withScheduler(String name) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, name, deepCacheInterval, deepCacheNonUniform);
    }

    /** DeepCache every {@code interval} steps (1 = off), evenly or denser around the centre step. */
    public GenerationRequest withDeepCache(int interval, boolean nonUniform) {
        return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, width, height, batchSize, scheduler,
                interval, nonUniform);
    }

    boolean usesGuidance() {
        return guidanceScale > 1;
    }

    /**
     * Whether this request can share one denoiser batch with {@code other}: same size, steps,
     * scheduler, guidance and feature-cache plan (prompts, negative prompts, seeds and image counts may differ).
     */
    public boolean batchableWith(GenerationRequest other) {
        return width == other.width && height == other.height && steps == other.steps
                && guidanceScale == other.guidanceScale && scheduler.equals(other.scheduler)
                && deepCacheInterval == other.deepCacheInterval && deepCacheNonUniform == other.deepCacheNonUniform;
    }
}
