package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.util.Map;

/**
 * The part of a pipeline that turns starting latents and text inputs into final latents and a
 * decoded image: the denoising loop plus the VAE decoder. {@link HostDenoiseStage} steps on the host
 * with ONNX Runtime, one call per step; {@link DeviceDenoiseStage} queues the whole loop on a
 * {@link dev.sdrt.runtime.loop.LoopDevice} and waits once.
 */
interface DenoiseStage extends AutoCloseable {

    /** The denoiser's inputs (the pipeline types its text inputs by them). */
    Map<String, TensorSpec> denoiserInputs();

    String denoiserName();

    /** Whether DeepCache's full and shallow graphs are loaded. */
    boolean hasFeatureCache();

    /**
     * Whether the denoiser and the VAE decoder run on ONNX Runtime on the host (the host loop, the CPU
     * loop device), whose attention holds each whole score matrix in host memory (TensorRT's fused
     * attention does not).
     */
    boolean onHost();

    /** Short words for the PNG's software field and the logs. */
    String backend();

    Output run(Input in);

    @Override
    void close();

    /**
     * One batch.
     *
     * @param latentShape [images, channels, height, width]
     * @param imageShape [images, 3, height, width]
     * @param latents the starting sample, not yet scaled for the model
     * @param textFeeds the denoiser's text inputs for the whole (guided) batch
     * @param stepNoise the fresh noise of each step in order (ancestral samplers), else null
     * @param cache DeepCache's schedule, or null
     */
    record Input(SchedulePlan plan, double guidanceScale, long[] latentShape, long[] imageShape, float[] latents,
            Map<String, Tensor> textFeeds, StepNoise stepNoise, FeatureCacheSchedule cache, Progress progress) {
        boolean guided() {
            return guidanceScale > 1;
        }
    }

    /** Draws the next step's noise for the whole batch. */
    interface StepNoise {
        float[] next();
    }

    /** Called around the steps; {@code beforeStep} may throw to stop the batch (cancelled, past deadline). */
    interface Progress {
        void beforeStep(int step, int total);

        void afterStep(int done, int total);
    }

    /**
     * @param image [images, 3, height, width] in [-1, 1]
     * @param synchronizations device waits the batch took (0 on the host)
     * @param uploadMs device loop: host time to stage and queue the one upload (0 on the host)
     * @param enqueueMs device loop: host time to queue every launch or the replay (0 on the host)
     * @param waitMs device loop: host time waiting for the device plus the read-back (0 on the host)
     */
    record Output(float[] image, float[] latents, double denoiseMs, double decodeMs, long synchronizations,
            double uploadMs, double enqueueMs, double waitMs) {
        /** A host loop's output: no device times. */
        Output(float[] image, float[] latents, double denoiseMs, double decodeMs, long synchronizations) {
            this(image, latents, denoiseMs, decodeMs, synchronizations, 0, 0, 0);
        }
    }
}
