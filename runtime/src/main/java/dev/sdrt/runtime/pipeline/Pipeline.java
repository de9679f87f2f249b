package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * Text to image and image to image for SD 1.x/2.x, SDXL and SD3: tokenizers → text encoder(s) →
 * denoising loop (UNet or transformer + scheduler; classifier-free guidance as one denoiser call
 * over [uncond; cond]) → VAE decoder. Which encoders feed the denoiser, and how, is the
 * {@link PipelineFamily}'s {@link TextConditioner}; everything else is shared. {@link #open} runs
 * every model on ONNX Runtime on the CPU (the denoiser may be the caller's {@link Denoiser});
 * {@link #openOnDevice} runs the denoising loop and the VAE decoder on a {@link LoopDevice}, with
 * the text encoders and the VAE encoder still on ONNX Runtime on the host.
 *
 * <p>This class is the facade: {@link PipelineParts} loads the folder, {@link RequestAdmission}
 * checks and completes each request on the submitting thread, {@link BatchWorker} owns the queue,
 * the worker thread, the locks and the deadline timer, and {@link BatchRun} is one batch's flow
 * through the models.
 *
 * <p>Everything that varies per step comes from a {@link SchedulePlan} computed on the host before
 * the loop. Each request keeps its own seed, so its images are the same whether it ran alone or in a
 * batch.
 *
 * <p>Concurrency: the pipeline is safe to share across threads. {@link #submit} queues a request for
 * one worker thread and returns at once; the worker takes the oldest waiting request plus every
 * waiting one that can share its batch ({@link GenerationRequest#batchableWith}, up to
 * {@link Limits#maxBatchImages()} images) and runs them together in the denoiser's batch dimension.
 * {@link #generate} runs one request on the calling thread instead, between the worker's batches.
 * <ul>
 *   <li>Back-pressure: at most {@link Limits#maxQueueDepth()} requests wait behind the running batch;
 *       {@code submit} refuses more with a {@link RejectedExecutionException}.
 *   <li>Cancelling a future, or its deadline passing, completes it at once: a waiting request leaves
 *       the queue, and a running batch stops at its next step once none of its futures is wanted
 *       (until then it computes the finished request's images with the others and drops them).
 *   <li>A request's {@link StepListener} runs on the computing thread, inside the batch; what it
 *       throws fails only its own request (a {@link CancellationException} cancels it) and it is not
 *       called again. Other requests in the batch go on.
 *   <li>{@link #close} cancels every waiting request ({@link CancellationException} "pipeline
 *       closed"), lets the running batch finish (cancel its futures to stop it sooner), then frees
 *       the models. Futures completing run their callbacks on the completing thread: the worker, the
 *       deadline timer, the closing or the cancelling thread.
 * </ul>
 * {@link #metrics} reads the queue depth, the outcome counts, the per-stage times and the prompt
 * cache's hits.
 */
public final class Pipeline implements AutoCloseable {
    /** Most images one batched denoiser call serves (before the factor 2 of guidance). */
    public static final int DEFAULT_MAX_BATCH_IMAGES = 4;

    /** Most requests waiting for the worker before {@link #submit} refuses more. */
    public static final int DEFAULT_MAX_QUEUE_DEPTH = 64;

    /**
     * How much the worker takes on: at most {@code maxBatchImages} images per batched denoiser call
     * (before the factor 2 of guidance), and at most {@code maxQueueDepth} requests waiting behind
     * the running batch.
     */
    public record Limits(int maxBatchImages, int maxQueueDepth) {
        public static final Limits DEFAULT = new Limits(DEFAULT_MAX_BATCH_IMAGES, DEFAULT_MAX_QUEUE_DEPTH);

        public Limits {
            if (maxBatchImages < 1) {
                throw new IllegalArgumentException("maxBatchImages must be at least 1");
            }
            if (maxQueueDepth < 1) {
                throw new IllegalArgumentException("maxQueueDepth must be at least 1");
            }
        }
    }

    private final PipelineSpec spec;
    private final TextConditioner conditioner;
    private final RequestAdmission admission;
    private final BatchWorker worker;

    private Pipeline(PipelineParts parts, Limits limits) {
        this.spec = parts.spec();
        this.conditioner = parts.conditioner();
        this.admission = new RequestAdmission(parts);
        this.worker = new BatchWorker(limits, new BatchRun(parts), parts);
    }

    /** Opens a pipeline folder written by {@code sdrt export-pipeline}; threads 0 means all cores. */
    public static Pipeline open(Path folder, int threads) throws IOException {
        return open(folder, threads, Limits.DEFAULT);
    }

    /** As {@link #open(Path, int)}, with the worker's batch and queue limits. */
    public static Pipeline open(Path folder, int threads, Limits limits) throws IOException {
        return open(folder, threads, limits, null, LoadListener.NONE);
    }

    public static Pipeline open(Path folder, int threads, int maxBatchImages) throws IOException {
        return open(folder, threads, maxBatchImages, null);
    }

    /**
     * Opens a pipeline whose denoiser comes from {@code denoiserOpener} (given the folder's UNet or
     * transformer file) instead of a plain ONNX Runtime session; null for the plain session.
     */
    public static Pipeline open(Path folder, int threads, int maxBatchImages, Denoiser.Opener denoiserOpener)
            throws IOException {
        return open(folder, threads, maxBatchImages, denoiserOpener, LoadListener.NONE);
    }

    /** As {@link #open(Path, int, int, Denoiser.Opener)}, telling {@code listener} about each model it opens. */
    public static Pipeline open(Path folder, int threads, int maxBatchImages, Denoiser.Opener denoiserOpener,
            LoadListener listener) throws IOException {
        return open(folder, threads, new Limits(maxBatchImages, DEFAULT_MAX_QUEUE_DEPTH), denoiserOpener, listener);
    }

    /**
     * Opens a pipeline with the worker's {@code limits}, whose denoiser comes from {@code
     * denoiserOpener} (null for a plain ONNX Runtime session), telling {@code listener} about each
     * model it opens.
     */
    public static Pipeline open(Path folder, int threads, Limits limits, Denoiser.Opener denoiserOpener, LoadListener listener)
            throws IOException {
        PipelineSpec spec = PipelineSpec.read(folder);
        return open(folder, spec, threads, limits, listener,
                () -> HostDenoiseStage.open(folder, spec, threads, denoiserOpener, listener));
    }

    /**
     * Opens a pipeline whose denoising loop and VAE decoder run on {@code device} with no
     * synchronization inside the loop (see {@link dev.sdrt.runtime.loop.DenoisingLoop}); text
     * encoders and the VAE encoder run on ONNX Runtime on the host. With {@code replay} each
     * shape's launches are captured once and replayed. The device stays the caller's to close.
     */
    public static Pipeline openOnDevice(Path folder, int threads, int maxBatchImages, LoopDevice device, boolean replay)
            throws IOException {
        return openOnDevice(folder, threads, maxBatchImages, device, replay, LoadListener.NONE);
    }

    /** As {@link #openOnDevice(Path, int, int, LoopDevice, boolean)}, telling {@code listener} about each model it opens. */
    public static Pipeline openOnDevice(Path folder, int threads, int maxBatchImages, LoopDevice device, boolean replay,
            LoadListener listener) throws IOException {
        return openOnDevice(folder, threads, new Limits(maxBatchImages, DEFAULT_MAX_QUEUE_DEPTH), device, replay, listener);
    }

    /** As {@link #openOnDevice(Path, int, int, LoopDevice, boolean, LoadListener)}, with the worker's batch and queue limits. */
    public static Pipeline openOnDevice(Path folder, int threads, Limits limits, LoopDevice device, boolean replay,
            LoadListener listener) throws IOException {
        PipelineSpec spec = PipelineSpec.read(folder);
        return open(folder, spec, threads, limits, listener, () -> DeviceDenoiseStage.open(folder, spec, device, replay, listener));
    }

    private static Pipeline open(Path folder, PipelineSpec spec, int threads, Limits limits, LoadListener listener,
            PipelineParts.StageOpener stageOpener) throws IOException {
        PipelineParts parts = PipelineParts.open(folder, spec, threads, listener, stageOpener);
        try {
            return new Pipeline(parts, limits);
        } catch (RuntimeException e) {
            PipelineParts.closeAll(List.of(parts));
            throw e;
        }
    }

    public PipelineSpec spec() {
        return spec;
    }

    /** Queues a request with no deadline; see {@link #submit(GenerationRequest, StepListener, Instant)}. */
    public CompletableFuture<GeneratedImage> submit(GenerationRequest request, StepListener listener) {
        return submit(request, listener, null);
    }

    /**
     * Queues a request for the worker and returns its future at once. Cancelling the future drops
     * the request from the queue; a running batch stops at its next step once none of its requests
     * is wanted.
     *
     * @param listener told after each step, on the worker; {@link StepListener#NONE} for none. What it
     *     throws fails this request alone, with the exception as the cause.
     * @param deadline when the request must be done (null for never); the moment it passes, the future
     *     fails with a {@link TimeoutException}, whether the request was still queued or running
     * @return the request's future; once the pipeline is closed, one already cancelled ("pipeline closed")
     * @throws NullPointerException for a null listener
     * @throws IllegalArgumentException for a request this pipeline cannot serve
     * @throws RejectedExecutionException when {@link Limits#maxQueueDepth()} requests are already waiting
     */
    public CompletableFuture<GeneratedImage> submit(GenerationRequest request, StepListener listener, Instant deadline) {
        requireListener(listener);
        if (worker.closed()) {
            return worker.closedFuture();
        }
        return worker.submit(admission.admit(request), listener, deadline);
    }

    /**
     * Runs one request on the calling thread, not batched with others, between the worker's batches.
     *
     * @param listener told after each step, on this thread; {@link StepListener#NONE} for none
     * @throws IllegalStateException once the pipeline is closed
     */
    public GeneratedImage generate(GenerationRequest request, StepListener listener) {
        requireListener(listener);
        if (worker.closed()) {
            throw new IllegalStateException("pipeline is closed");
        }
        return worker.generate(admission.admit(request), listener);
    }

    /** Queue depth, outcome counts, per-stage times and prompt-cache hits so far. */
    public PipelineMetrics metrics() {
        return worker.metrics(conditioner.cacheStats());
    }

    private static void requireListener(StepListener listener) {
        Objects.requireNonNull(listener, "listener must not be null; pass StepListener.NONE for none");
    }

    /**
     * Cancels every waiting request, waits for the running batch (if any) to finish, and frees the
     * models. From then on {@link #submit} returns cancelled futures and {@link #generate} throws.
     * Closing again does nothing more. A step listener may not close the pipeline whose batch it
     * reports on (that would free the models under the batch).
     */
    @Override
    public void close() {
        worker.close();
    }
}
