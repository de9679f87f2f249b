package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.text.ClipTokenizer;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Text to image and image to image on ONNX Runtime (CPU) for SD 1.x/2.x, SDXL and SD3: tokenizers →
 * text encoder(s) → denoising loop (UNet or transformer + scheduler; classifier-free guidance as one
 * denoiser call over [uncond; cond]) → VAE decoder. Which encoders feed the denoiser, and how, is the
 * {@link PipelineFamily}'s {@link TextConditioner}; everything else is shared.
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
 * {@link #metrics} reads the queue depth, the outcome counts and the per-stage times.
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

    private final Path folder;
    private final PipelineSpec spec;
    private final PipelineFamily family;
    private final SchedulerConfig schedulerConfig;
    private final TextConditioner conditioner;
    /** Null when the folder has no VAE encoder (text to image only). */
    private final OrtRunner vaeEncoder;
    private final DenoiseStage stage;
    private final Limits limits;
    /** Guards {@link #queue} and the writes of {@link #closed}, so that nothing joins the queue after close drains it. */
    private final Object queueLock = new Object();
    /**
     * Waiting jobs, oldest first. A set, so that a job whose future completes while it waits
     * (cancelled, timed out) leaves at once and stops counting against the queue depth.
     */
    private final LinkedHashSet<Job> queue = new LinkedHashSet<>();
    /** Held while a batch runs on the models, and by close while it frees them. */
    private final Object modelLock = new Object();
    /** Completes futures at their deadlines; its one daemon thread starts with the first deadline. */
    private final ScheduledThreadPoolExecutor deadlines;
    private final PipelineMetrics.Recorder metrics = new PipelineMetrics.Recorder();
    private final Thread worker;
    /** Written under {@link #queueLock}; read without it where a stale false only means checking again under a lock. */
    private volatile boolean closed;
    /** Guarded by {@link #modelLock}. */
    private boolean modelsClosed;

    /** A request with its listener, its future, and when it was submitted. */
    private record Job(GenerationRequest request, StepListener listener, CompletableFuture<GeneratedImage> future,
            long submittedNanos) {
        boolean abandoned() {
            return future.isDone();
        }
    }

    private Pipeline(Path folder, PipelineSpec spec, SchedulerConfig schedulerConfig, TextConditioner conditioner,
            OrtRunner vaeEncoder, DenoiseStage stage, Limits limits) {
        this.folder = folder;
        this.spec = spec;
        this.family = spec.family();
        this.schedulerConfig = schedulerConfig;
        this.conditioner = conditioner;
        this.vaeEncoder = vaeEncoder;
        this.stage = stage;
        this.limits = limits;
        this.deadlines = new ScheduledThreadPoolExecutor(1, task -> {
            Thread t = new Thread(task, "sdrt-pipeline-deadlines");
            t.setDaemon(true);
            return t;
        });
        // a request that finishes in time cancels its deadline; the timer should not hold it until then
        deadlines.setRemoveOnCancelPolicy(true);
        this.worker = new Thread(this::serve, "sdrt-pipeline");
        worker.setDaemon(true);
        worker.start();
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
        return open(folder, spec, threads, limits, listener, () -> {
            boolean deepCache = spec.deepCacheFull != null && spec.deepCacheShallow != null;
            List<AutoCloseable> opened = new ArrayList<>();
            try {
                Path denoiserFile = folder.resolve(spec.denoiser());
                Denoiser denoiser = opening(listener, spec.denoiserKey(), denoiserFile,
                        () -> denoiserOpener != null ? denoiserOpener.open(denoiserFile) : Denoiser.of(ort(denoiserFile, threads)));
                opened.add(denoiser);
                OrtRunner vae = ort("vae_decoder", folder.resolve(spec.vaeDecoder), threads, listener);
                opened.add(vae);
                OrtRunner full = deepCache ? ort("deepcache_full", folder.resolve(spec.deepCacheFull), threads, listener) : null;
                opened.add(full);
                OrtRunner shallow = deepCache ? ort("deepcache_shallow", folder.resolve(spec.deepCacheShallow), threads, listener)
                        : null;
                return new HostDenoiseStage(spec, denoiser, vae, full, shallow);
            } catch (IOException | RuntimeException e) {
                closeAll(opened);
                throw e;
            }
        });
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

    /** Opens what is shared by both kinds of stage: tokenizers, text encoders, the VAE encoder. */
    private interface StageOpener {
        DenoiseStage open() throws IOException;
    }

    private static Pipeline open(Path folder, PipelineSpec spec, int threads, Limits limits, LoadListener listener,
            StageOpener stageOpener) throws IOException {
        PipelineFamily family = spec.family();
        ClipTokenizer tokenizer = ClipTokenizer.load(folder.resolve(spec.tokenizer));
        ClipTokenizer tokenizer2 = family == PipelineFamily.SD ? null : ClipTokenizer.load(folder.resolve(spec.tokenizer2));
        Path schedulerFile = folder.resolve(spec.schedulerConfig);
        SchedulerConfig schedulerConfig = Files.exists(schedulerFile) ? SchedulerConfig.fromJson(schedulerFile)
                : family == PipelineFamily.SD3 ? SchedulerConfig.stableDiffusion3() : SchedulerConfig.stableDiffusion();
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            OrtRunner textEncoder = ort("text_encoder", folder.resolve(spec.textEncoder), threads, listener);
            opened.add(textEncoder);
            OrtRunner textEncoder2 = family == PipelineFamily.SD ? null
                    : ort("text_encoder_2", folder.resolve(spec.textEncoder2), threads, listener);
            opened.add(textEncoder2);
            OrtRunner vaeEncoder = spec.vaeEncoder == null ? null
                    : ort("vae_encoder", folder.resolve(spec.vaeEncoder), threads, listener);
            opened.add(vaeEncoder);
            DenoiseStage stage = stageOpener.open();
            opened.add(stage);
            TextConditioner conditioner = conditioner(spec, stage, tokenizer, textEncoder, tokenizer2, textEncoder2);
            return new Pipeline(folder, spec, schedulerConfig, conditioner, vaeEncoder, stage, limits);
        } catch (IOException | RuntimeException e) {
            closeAll(opened);
            throw e;
        }
    }

    private static OrtRunner ort(String component, Path file, int threads, LoadListener listener) throws IOException {
        return opening(listener, component, file, () -> ort(file, threads));
    }

    private static OrtRunner ort(Path file, int threads) {
        OrtRunner.Builder b = OrtRunner.builder(file);
        if (threads > 0) {
            b.intraOpThreads(threads);
        }
        return b.build();
    }

    /** Opens one model of a pipeline. */
    interface Opening<T> {
        T open() throws IOException;
    }

    /** Runs {@code opening}, telling {@code listener} before, and after with the time it took or that it failed. */
    static <T> T opening(LoadListener listener, String component, Path file, Opening<T> opening) throws IOException {
        listener.loading(component, file);
        long start = System.nanoTime();
        T opened;
        try {
            opened = opening.open();
        } catch (Throwable t) {
            listener.failed(component, file);
            throw t;
        }
        listener.loaded(component, file, (System.nanoTime() - start) / 1e9);
        return opened;
    }

    private static void closeAll(List<AutoCloseable> opened) {
        for (AutoCloseable c : opened) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // already failing; the first error is the one to report
                }
            }
        }
    }

    private static TextConditioner conditioner(PipelineSpec spec, DenoiseStage stage, ClipTokenizer tokenizer,
            OrtRunner textEncoder, ClipTokenizer tokenizer2, OrtRunner textEncoder2) {
        ClipTextEncoder first = new ClipTextEncoder(tokenizer, textEncoder, spec.maxTextLength);
        return switch (spec.family()) {
            case SD -> TextConditioner.sd(first);
            case SDXL -> TextConditioner.sdxl(first, new ClipTextEncoder(tokenizer2, textEncoder2, spec.maxTextLength),
                    spec.forceZerosForEmptyPrompt);
            case SD3 -> {
                TensorSpec context = stage.denoiserInputs().get("encoder_hidden_states");
                long[] shape = context == null ? null : context.shape();
                if (shape == null || shape.length != 3 || shape[2] <= 0) {
                    throw new IllegalStateException(stage.denoiserName() + ": expected an input encoder_hidden_states"
                            + " [batch, tokens, joint_attention_dim] with a fixed last dimension");
                }
                yield TextConditioner.sd3(first, new ClipTextEncoder(tokenizer2, textEncoder2, spec.maxTextLength),
                        shape[2], spec.t5SequenceLength);
            }
        };
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
        if (closed) {
            return closedFuture();
        }
        GenerationRequest resolved = resolve(request);
        checkServable(resolved);
        CompletableFuture<GeneratedImage> future = new CompletableFuture<>();
        Job job = new Job(resolved, listener, future, System.nanoTime());
        synchronized (queueLock) {
            if (closed) {
                return closedFuture();
            }
            if (queue.size() >= limits.maxQueueDepth()) {
                metrics.rejected();
                throw new RejectedExecutionException("queue full: " + queue.size() + " requests waiting (max "
                        + limits.maxQueueDepth() + ")");
            }
            queue.add(job);
            future.whenComplete((image, failure) -> {
                dequeue(job);
                metrics.finished(failure);
            });
            // Scheduled under the lock: close shuts the timer down only after it has set closed under it.
            Duration untilDeadline = deadline == null ? null : Duration.between(Instant.now(), deadline);
            // (a deadline centuries away is as good as none, and its nanoseconds would overflow)
            if (untilDeadline != null && untilDeadline.compareTo(ChronoUnit.CENTURIES.getDuration()) < 0) {
                ScheduledFuture<?> timer = deadlines.schedule(() -> expire(job), untilDeadline.toNanos(), TimeUnit.NANOSECONDS);
                future.whenComplete((image, failure) -> timer.cancel(false));
            }
            queueLock.notifyAll();
        }
        return future;
    }

    /**
     * Runs one request on the calling thread, not batched with others, between the worker's batches.
     *
     * @param listener told after each step, on this thread; {@link StepListener#NONE} for none
     * @throws IllegalStateException once the pipeline is closed
     */
    public GeneratedImage generate(GenerationRequest request, StepListener listener) {
        requireListener(listener);
        if (closed) {
            throw new IllegalStateException("pipeline is closed");
        }
        GenerationRequest resolved = resolve(request);
        checkServable(resolved);
        Job job = new Job(resolved, listener, new CompletableFuture<>(), System.nanoTime());
        job.future().whenComplete((image, failure) -> metrics.finished(failure));
        runBatch(List.of(job));
        return job.future().join();
    }

    /** Queue depth, outcome counts, per-stage times and prompt-cache hits so far. */
    public PipelineMetrics metrics() {
        int depth;
        synchronized (queueLock) {
            depth = queue.size();
        }
        return metrics.read(depth, limits.maxQueueDepth(), conditioner.cacheStats());
    }

    private static void requireListener(StepListener listener) {
        Objects.requireNonNull(listener, "listener must not be null; pass StepListener.NONE for none");
    }

    /** What {@link #submit} returns once the pipeline is closed. */
    private CompletableFuture<GeneratedImage> closedFuture() {
        CancellationException closing = new CancellationException("pipeline closed");
        metrics.finished(closing);
        return CompletableFuture.failedFuture(closing);
    }

    private void dequeue(Job job) {
        synchronized (queueLock) {
            queue.remove(job);
        }
    }

    /** The deadline timer's task: the job leaves the queue if it is still there, and its future fails. */
    private void expire(Job job) {
        boolean waiting;
        synchronized (queueLock) {
            waiting = queue.remove(job);
        }
        job.future().completeExceptionally(new TimeoutException(waiting ? "deadline passed before the request started"
                : "deadline passed while the request was running"));
    }

    /** The worker: runs batch after batch until close. */
    private void serve() {
        for (List<Job> batch = nextBatch(); batch != null; batch = nextBatch()) {
            runBatch(batch);
        }
    }

    /**
     * Waits for a job, then takes the oldest one plus every waiting job that can share its batch;
     * null once the pipeline is closed (close has cancelled whatever was waiting).
     */
    private List<Job> nextBatch() {
        synchronized (queueLock) {
            while (queue.isEmpty() && !closed) {
                try {
                    queueLock.wait();
                } catch (InterruptedException e) {
                    // nobody but close ends the worker, and close says so through closed
                }
            }
            if (closed) {
                return null;
            }
            Iterator<Job> waiting = queue.iterator();
            Job first = waiting.next();
            waiting.remove();
            List<Job> batch = new ArrayList<>(List.of(first));
            int images = first.request().batchSize();
            while (waiting.hasNext()) {
                Job other = waiting.next();
                if (other.request().batchableWith(first.request()) && images + other.request().batchSize() <= limits.maxBatchImages()) {
                    waiting.remove();
                    batch.add(other);
                    images += other.request().batchSize();
                }
            }
            long now = System.nanoTime();
            for (Job job : batch) {
                if (!job.abandoned()) {
                    metrics.waited(now - job.submittedNanos());
                }
            }
            return batch;
        }
    }

    /** Fails early, at submit time, for requests this folder cannot serve. */
    private void checkServable(GenerationRequest r) {
        if (r.deepCacheInterval() > 1 && !stage.hasFeatureCache()) {
            throw new IllegalArgumentException(family.hasUnet()
                    ? "this pipeline has no DeepCache graphs; export it with 'sdrt export-pipeline ... --deepcache-branch 0'"
                            + " to use a cache interval"
                    : "DeepCache needs a UNet; " + family.id() + " pipelines have a transformer");
        }
        if (r.initImage() != null) {
            if (vaeEncoder == null) {
                throw new IllegalArgumentException("this pipeline folder has no VAE encoder, which image to image needs;"
                        + " re-export it with 'sdrt export-pipeline'");
            }
            SchedulePlan.img2imgStart(r.steps(), r.strength());
        }
        if (r.initialLatents() != null) {
            long[] expected = {r.batchSize(), spec.latentChannels, r.height() / spec.vaeScaleFactor, r.width() / spec.vaeScaleFactor};
            if (!Arrays.equals(r.initialLatents().shape(), expected)) {
                throw new IllegalArgumentException("initial latents are " + Tensor.formatShape(r.initialLatents().shape())
                        + " but a batch of " + r.batchSize() + " at " + r.width() + "x" + r.height() + " starts from "
                        + Tensor.formatShape(expected) + " ([batch, latent channels, height / " + spec.vaeScaleFactor
                        + ", width / " + spec.vaeScaleFactor + "])");
            }
        }
        checkMemory(r);
    }

    /**
     * Refuses a request whose largest attention score matrix alone is larger than this machine's
     * memory: ONNX Runtime would fail to allocate it well into the run (the tiny UNet attends over
     * every latent pixel, so 512x512 asks it for 2 × 8 heads × 65,536² scores, 256 GiB).
     */
    private void checkMemory(GenerationRequest r) {
        long memory = physicalMemory();
        PipelineSpec.AttentionScores scores = attentionScores(r, r.width(), r.height());
        if (scores == null || scores.bytes() <= memory) {
            return;
        }
        int multiple = spec.sizeMultiple();
        int fitting = 0;
        for (int side = multiple; side <= Math.max(r.width(), r.height()); side += multiple) {
            PipelineSpec.AttentionScores at = attentionScores(r, side, side);
            if (at.bytes() > memory) {
                break;
            }
            fitting = side;
        }
        String component = switch (scores.component()) {
            case "denoiser" -> family.hasUnet() ? "UNet" : "transformer";
            case "vae_decoder" -> "VAE decoder";
            default -> "VAE encoder";
        };
        throw new IllegalArgumentException(String.format(Locale.ROOT, "%dx%d needs more memory than this machine has: the %s's"
                + " attention over %,d tokens holds %s of scores at once (batch %d × %d heads × %,d² tokens × %d bytes), and"
                + " the machine has %s; %s", r.width(), r.height(), component, scores.tokens(),
                gib(scores.bytes()), scores.batch(), scores.heads(), scores.tokens(), elementBytes(), gib(memory),
                fitting > 0 ? "the largest square size whose scores fit is " + fitting + "x" + fitting + " (at batch "
                        + r.batchSize() + ")" : "no size fits"));
    }

    /** The request's largest score matrix at {@code width} × {@code height}, among the components ONNX Runtime runs on the host. */
    private PipelineSpec.AttentionScores attentionScores(GenerationRequest r, int width, int height) {
        return spec.largestAttentionScores(width, height, r.batchSize(), r.usesGuidance(), r.initImage() != null,
                elementBytes(), component -> component.equals("vae_encoder") || stage.onHost());
    }

    /** Bytes per score: the denoiser's float type (fp16 exports compute their attention in fp16). */
    private int elementBytes() {
        TensorSpec sample = stage.denoiserInputs().get(family.sampleInput());
        return sample == null ? 4 : sample.dtype().byteSize();
    }

    private static long physicalMemory() {
        return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
                ? os.getTotalMemorySize() : Runtime.getRuntime().maxMemory();
    }

    private static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }

    /** DeepCache's schedule, or null when the plain denoiser serves the loop (interval 1 is exactly that). */
    private static FeatureCacheSchedule featureCache(GenerationRequest r, int steps) {
        int interval = Math.min(r.deepCacheInterval(), steps);
        if (interval <= 1) {
            return null;
        }
        return r.deepCacheNonUniform() ? FeatureCacheSchedule.nonUniform(steps, interval)
                : FeatureCacheSchedule.uniform(steps, interval);
    }

    /** Fills in the defaults: the family's scheduler, the initial image's or the pipeline's size. */
    private GenerationRequest resolve(GenerationRequest r) {
        RgbImage init = r.initImage();
        int width = r.width() != 0 ? r.width() : init != null ? init.width() : spec.defaultWidth;
        int height = r.height() != 0 ? r.height() : init != null ? init.height() : spec.defaultHeight;
        String sizeProblem = spec.sizeProblem(width, height);
        if (sizeProblem != null) {
            throw new IllegalArgumentException(sizeProblem);
        }
        String scheduler = r.scheduler() != null ? r.scheduler() : family.defaultScheduler();
        Schedulers.create(scheduler, schedulerConfig, family.modelKind());
        return r.withSize(width, height).withScheduler(scheduler);
    }

    /**
     * Runs the jobs still wanted as one batch and completes their futures, with their images or with
     * why they failed; cancels them if the pipeline closed first, so no batch runs on freed models.
     * The futures complete after the model lock is released, so that their callbacks may close the
     * pipeline.
     */
    private void runBatch(List<Job> jobs) {
        List<Job> live;
        List<GeneratedImage> results = null;
        Throwable failure = null;
        synchronized (modelLock) {
            live = jobs.stream().filter(job -> !job.abandoned()).toList();
            if (live.isEmpty()) {
                return;
            }
            if (closed) {
                failure = new CancellationException("pipeline closed");
            } else {
                try {
                    results = denoiseAndDecode(live);
                    metrics.ran(results.get(0).timings(), live.get(0).request().initImage() != null);
                } catch (Throwable t) {
                    failure = t;
                }
            }
        }
        for (int i = 0; i < live.size(); i++) {
            if (failure == null) {
                live.get(i).future().complete(results.get(i));
            } else {
                live.get(i).future().completeExceptionally(failure);
            }
        }
    }

    private List<GeneratedImage> denoiseAndDecode(List<Job> jobs) {
        GenerationRequest shape = jobs.get(0).request();
        int width = shape.width();
        int height = shape.height();
        boolean guided = shape.usesGuidance();
        int images = jobs.stream().mapToInt(j -> j.request().batchSize()).sum();
        long start = System.nanoTime();

        // Text: [uncond of every image..., cond of every image...] so one denoiser call serves both halves.
        List<Map<String, Tensor>> uncond = new ArrayList<>();
        List<Map<String, Tensor>> cond = new ArrayList<>();
        for (Job job : jobs) {
            for (int k = 0; k < job.request().batchSize(); k++) {
                cond.add(conditioner.condition(job.request().prompt(), false, width, height));
                if (guided) {
                    uncond.add(conditioner.condition(job.request().negativePrompt(), true, width, height));
                }
            }
        }
        List<Map<String, Tensor>> all = new ArrayList<>(uncond);
        all.addAll(cond);
        Map<String, Tensor> textFeeds = new LinkedHashMap<>();
        for (String name : all.get(0).keySet()) {
            textFeeds.put(name, typed(stage.denoiserInputs(), stage.denoiserName(), name,
                    FloatTensors.concat(all.stream().map(m -> m.get(name)).toList(), 0)));
        }
        double textMs = (System.nanoTime() - start) / 1e6;

        SchedulePlan fullPlan = Schedulers.create(shape.scheduler(), schedulerConfig).plan(shape.steps());
        boolean fromImage = shape.initImage() != null;
        SchedulePlan plan = fromImage ? fullPlan.startingAt(SchedulePlan.img2imgStart(shape.steps(), shape.strength())) : fullPlan;
        long latentH = height / spec.vaeScaleFactor;
        long latentW = width / spec.vaeScaleFactor;
        int perImage = (int) (spec.latentChannels * latentH * latentW);
        // Each request draws its own noise from its own seed, in the order a solo run would.
        long encodeStart = System.nanoTime();
        List<GaussianNoise> noises = new ArrayList<>();
        float[] latents = new float[perImage * images];
        int offset = 0;
        for (Job job : jobs) {
            GaussianNoise noise = new GaussianNoise(job.request().seed());
            noises.add(noise);
            int n = perImage * job.request().batchSize();
            // Given latents replace the seed's first draw, which is still taken so that the step noise
            // of ancestral samplers is the same with and without them.
            float[] drawn = noise.next(n);
            Tensor given = job.request().initialLatents();
            float[] initial = given != null ? given.toFloatArray() : drawn;
            if (fromImage) {
                float[] clean = encodeImage(job.request().initImage(), job.request().batchSize(), latentH, latentW);
                plan.noiseSample(clean, initial);
                System.arraycopy(clean, 0, latents, offset, n);
            } else {
                for (int i = 0; i < n; i++) {
                    latents[offset + i] = (float) (initial[i] * plan.initNoiseSigma());
                }
            }
            offset += n;
        }
        double encodeMs = fromImage ? (System.nanoTime() - encodeStart) / 1e6 : 0;

        DenoiseStage.Progress progress = new DenoiseStage.Progress() {
            @Override
            public void beforeStep(int step, int total) {
                checkStillWanted(jobs, step, total);
            }

            @Override
            public void afterStep(int done, int total) {
                tellListeners(jobs, done, total);
            }
        };
        long[] latentShape = {images, spec.latentChannels, latentH, latentW};
        DenoiseStage.Output out = stage.run(new DenoiseStage.Input(plan, shape.guidanceScale(), latentShape,
                new long[] {images, 3, height, width}, latents, textFeeds, () -> stepNoise(jobs, noises, perImage),
                featureCache(shape, plan.size()), progress));
        byte[][] rgb = toRgb(out.image(), images, height, width);

        GeneratedImage.Timings timings = new GeneratedImage.Timings(textMs, encodeMs, out.denoiseMs(), out.decodeMs(), plan.size(),
                out.synchronizations(), out.uploadMs(), out.enqueueMs(), out.waitMs());
        List<GeneratedImage> results = new ArrayList<>();
        int first = 0;
        for (Job job : jobs) {
            int n = job.request().batchSize();
            float[] own = Arrays.copyOfRange(out.latents(), first * perImage, (first + n) * perImage);
            results.add(new GeneratedImage(width, height, Arrays.copyOfRange(rgb, first, first + n),
                    Tensor.ofFloats(new long[] {n, spec.latentChannels, latentH, latentW}, own), parameters(job.request()),
                    timings));
            first += n;
        }
        return results;
    }

    /**
     * The clean latents of {@code image}, repeated {@code copies} times: the VAE encoder's mean,
     * shifted and scaled into the denoiser's latent space ((mean − shift)·scaling).
     */
    private float[] encodeImage(RgbImage image, int copies, long latentH, long latentW) {
        Tensor pixels = Tensor.ofFloats(new long[] {1, 3, image.height(), image.width()}, image.toChwSigned());
        Tensor latent = vaeEncoder.run(Map.of("sample", typed(vaeEncoder, "sample", pixels))).get("latent");
        long[] expected = {1, spec.latentChannels, latentH, latentW};
        if (latent == null || !Arrays.equals(latent.shape(), expected)) {
            throw new IllegalStateException(vaeEncoder.model() + " returned " + (latent == null ? "no 'latent' output"
                    : Tensor.formatShape(latent.shape())) + ", expected " + Tensor.formatShape(expected));
        }
        float[] mean = latent.toFloatArray();
        float[] out = new float[mean.length * copies];
        for (int c = 0; c < copies; c++) {
            for (int i = 0; i < mean.length; i++) {
                out[c * mean.length + i] = (float) ((mean[i] - spec.vaeShiftFactor) * spec.vaeScalingFactor);
            }
        }
        return out;
    }

    /** Stops the batch when nobody wants its result any more (cancelled, past its deadline, failed by its listener). */
    private static void checkStillWanted(List<Job> jobs, int step, int total) {
        if (jobs.stream().allMatch(Job::abandoned)) {
            throw new CancellationException("cancelled after step " + step + " of " + total);
        }
    }

    /**
     * Tells each job still wanted about the step. A listener's exception is its own job's failure (a
     * {@link CancellationException} its cancellation), so one caller's listener cannot fail the others
     * in the batch; a job that is done hears no more.
     */
    private static void tellListeners(List<Job> jobs, int done, int total) {
        for (Job job : jobs) {
            if (job.abandoned()) {
                continue;
            }
            try {
                job.listener().onStep(done, total);
            } catch (Throwable t) {
                job.future().completeExceptionally(t);
            }
        }
    }

    private static float[] stepNoise(List<Job> jobs, List<GaussianNoise> noises, int perImage) {
        float[] all = new float[perImage * jobs.stream().mapToInt(j -> j.request().batchSize()).sum()];
        int offset = 0;
        for (int j = 0; j < jobs.size(); j++) {
            float[] n = noises.get(j).next(perImage * jobs.get(j).request().batchSize());
            System.arraycopy(n, 0, all, offset, n.length);
            offset += n.length;
        }
        return all;
    }

    /** Casts a feed to the dtype the model declares for that input (fp16 exports take fp16). */
    static Tensor typed(OrtRunner runner, String input, Tensor t) {
        return typed(runner.inputs(), runner.model().toString(), input, t);
    }

    static Tensor typed(Map<String, TensorSpec> inputs, String model, String input, Tensor t) {
        TensorSpec s = inputs.get(input);
        if (s == null) {
            throw new IllegalStateException(model + " has no input '" + input + "'; inputs: " + inputs.keySet());
        }
        return s.dtype() == t.dtype() ? t : t.castTo(s.dtype());
    }

    /** [-1, 1] NCHW floats to 8-bit interleaved RGB per image. */
    static byte[][] toRgb(float[] chw, int batch, int height, int width) {
        byte[][] out = new byte[batch][height * width * 3];
        int plane = height * width;
        for (int b = 0; b < batch; b++) {
            int base = b * 3 * plane;
            for (int p = 0; p < plane; p++) {
                for (int c = 0; c < 3; c++) {
                    float v = chw[base + c * plane + p];
                    float unit = Float.isNaN(v) ? 0 : Math.min(1f, Math.max(0f, v * 0.5f + 0.5f));
                    out[b][p * 3 + c] = (byte) Math.round(unit * 255);
                }
            }
        }
        return out;
    }

    private Map<String, String> parameters(GenerationRequest r) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("prompt", r.prompt());
        if (!r.negativePrompt().isEmpty()) {
            p.put("negative_prompt", r.negativePrompt());
        }
        p.put("steps", Integer.toString(r.steps()));
        p.put("guidance_scale", Double.toString(r.guidanceScale()));
        p.put("seed", Long.toString(r.seed()));
        if (r.initialLatents() != null) {
            // the seed then drives only an ancestral sampler's per-step noise, not the start
            p.put("initial_latents", "given");
        }
        p.put("size", r.width() + "x" + r.height());
        p.put("scheduler", r.scheduler());
        if (r.initImage() != null) {
            p.put("strength", Double.toString(r.strength()));
        }
        if (r.deepCacheInterval() > 1) {
            p.put("deepcache", r.deepCacheInterval() + (r.deepCacheNonUniform() ? " (non-uniform)" : " (uniform)"));
        }
        p.put("model", spec.arch != null ? spec.arch : folder.getFileName().toString());
        p.put("pipeline", family.id() + (r.initImage() != null ? " image-to-image" : " text-to-image"));
        p.put("software", "sdrt (" + stage.backend() + ")");
        return p;
    }

    /**
     * Cancels every waiting request, waits for the running batch (if any) to finish, and frees the
     * models. From then on {@link #submit} returns cancelled futures and {@link #generate} throws.
     * Closing again does nothing more. A step listener may not close the pipeline whose batch it
     * reports on (that would free the models under the batch).
     */
    @Override
    public void close() {
        if (Thread.holdsLock(modelLock)) {
            throw new IllegalStateException("close() was called inside a running batch (from a step listener, or a callback"
                    + " of a future that listener failed); close the pipeline from another thread");
        }
        List<Job> waiting;
        synchronized (queueLock) {
            closed = true;
            waiting = List.copyOf(queue);
            queue.clear();
            queueLock.notifyAll();
        }
        for (Job job : waiting) {
            job.future().completeExceptionally(new CancellationException("pipeline closed"));
        }
        // A future's callback may close the pipeline on the worker, which then ends after the callback returns.
        if (Thread.currentThread() != worker) {
            joinUninterruptibly(worker);
        }
        synchronized (modelLock) {
            if (!modelsClosed) {
                modelsClosed = true;
                conditioner.close();
                stage.close();
                if (vaeEncoder != null) {
                    vaeEncoder.close();
                }
            }
        }
        // after the worker: a running batch's deadlines still fire while close waits for it
        deadlines.shutdownNow();
    }

    private static void joinUninterruptibly(Thread thread) {
        boolean interrupted = false;
        while (true) {
            try {
                thread.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
