package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.PlanStep;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.text.ClipTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeoutException;

/**
 * Text to image for SD 1.x/2.x on ONNX Runtime (CPU): tokenizer → text encoder → denoising loop
 * (UNet + scheduler, classifier-free guidance as one UNet call over [uncond; cond]) → VAE decoder.
 *
 * <p>Everything that varies per step comes from a {@link SchedulePlan} computed on the host before
 * the loop. The pipeline is safe to share across threads: {@link #submit} queues requests for one
 * worker, which runs compatible queued requests (same size, steps, scheduler, guidance) together in
 * the denoiser's batch dimension. Each request keeps its own seed, so its images are the same
 * whether it ran alone or in a batch.
 */
public final class TextToImagePipeline implements AutoCloseable {
    /** Most images one batched denoiser call serves (before the factor 2 of guidance). */
    public static final int DEFAULT_MAX_BATCH_IMAGES = 4;

    private final Path folder;
    private final PipelineSpec spec;
    private final ClipTokenizer tokenizer;
    private final SchedulerConfig schedulerConfig;
    private final OrtRunner textEncoder;
    private final OrtRunner unet;
    private final OrtRunner vaeDecoder;
    /** DeepCache's full and shallow UNets, or null when the folder has none. */
    private final OrtRunner deepCacheFull;
    private final OrtRunner deepCacheShallow;
    private final PromptCache promptCache = new PromptCache(64);
    private final int maxBatchImages;
    private final LinkedBlockingDeque<Job> queue = new LinkedBlockingDeque<>();
    private final Thread worker;
    private volatile boolean closed;

    /** A queued request with its listener, deadline (may be null) and future. */
    private record Job(GenerationRequest request, StepListener listener, Instant deadline, CompletableFuture<GeneratedImage> future) {
        boolean abandoned() {
            return future.isDone();
        }
    }

    private TextToImagePipeline(Path folder, PipelineSpec spec, ClipTokenizer tokenizer, SchedulerConfig schedulerConfig,
            List<OrtRunner> runners, int maxBatchImages) {
        this.folder = folder;
        this.spec = spec;
        this.tokenizer = tokenizer;
        this.schedulerConfig = schedulerConfig;
        this.textEncoder = runners.get(0);
        this.unet = runners.get(1);
        this.vaeDecoder = runners.get(2);
        this.deepCacheFull = runners.size() > 3 ? runners.get(3) : null;
        this.deepCacheShallow = runners.size() > 4 ? runners.get(4) : null;
        this.maxBatchImages = maxBatchImages;
        this.worker = new Thread(this::serve, "sdrt-pipeline");
        worker.setDaemon(true);
        worker.start();
    }

    /** Opens a pipeline folder written by {@code sdrt export-pipeline}; threads 0 means all cores. */
    public static TextToImagePipeline open(Path folder, int threads) throws IOException {
        return open(folder, threads, DEFAULT_MAX_BATCH_IMAGES);
    }

    public static TextToImagePipeline open(Path folder, int threads, int maxBatchImages) throws IOException {
        if (maxBatchImages < 1) {
            throw new IllegalArgumentException("maxBatchImages must be at least 1");
        }
        PipelineSpec spec = PipelineSpec.read(folder);
        ClipTokenizer tokenizer = ClipTokenizer.load(folder.resolve(spec.tokenizer));
        Path schedulerFile = folder.resolve(spec.schedulerConfig);
        SchedulerConfig schedulerConfig = Files.exists(schedulerFile) ? SchedulerConfig.fromJson(schedulerFile)
                : SchedulerConfig.stableDiffusion();
        List<OrtRunner> opened = new ArrayList<>();
        List<String> files = new ArrayList<>(List.of(spec.textEncoder, spec.unet, spec.vaeDecoder));
        if (spec.deepCacheFull != null && spec.deepCacheShallow != null) {
            files.add(spec.deepCacheFull);
            files.add(spec.deepCacheShallow);
        }
        try {
            for (String file : files) {
                OrtRunner.Builder b = OrtRunner.builder(folder.resolve(file));
                if (threads > 0) {
                    b.intraOpThreads(threads);
                }
                opened.add(b.build());
            }
            return new TextToImagePipeline(folder, spec, tokenizer, schedulerConfig, opened, maxBatchImages);
        } catch (RuntimeException e) {
            opened.forEach(OrtRunner::close);
            throw e;
        }
    }

    public PipelineSpec spec() {
        return spec;
    }

    /** Queues a request. Cancelling the future stops its work at the next step. */
    public CompletableFuture<GeneratedImage> submit(GenerationRequest request, StepListener listener) {
        return submit(request, listener, null);
    }

    /**
     * Queues a request that must finish by {@code deadline} (null for none): past it, the future
     * fails with a {@link TimeoutException}, whether the request was still queued or running.
     */
    public CompletableFuture<GeneratedImage> submit(GenerationRequest request, StepListener listener, Instant deadline) {
        if (closed) {
            throw new IllegalStateException("pipeline is closed");
        }
        GenerationRequest resolved = resolve(request);
        checkDeepCache(resolved);
        CompletableFuture<GeneratedImage> future = new CompletableFuture<>();
        queue.add(new Job(resolved, listener, deadline, future));
        return future;
    }

    /** Runs one request on the calling thread (not batched with others). */
    public GeneratedImage generate(GenerationRequest request, StepListener listener) {
        GenerationRequest resolved = resolve(request);
        checkDeepCache(resolved);
        Job job = new Job(resolved, listener, null, new CompletableFuture<>());
        runBatch(List.of(job));
        return job.future().join();
    }

    /** The worker: takes the oldest job plus every queued job that can share its batch. */
    private void serve() {
        while (!closed) {
            Job first;
            try {
                first = queue.take();
            } catch (InterruptedException e) {
                return;
            }
            List<Job> batch = new ArrayList<>(List.of(first));
            int images = first.request().batchSize();
            for (Job other : List.copyOf(queue)) {
                if (other.request().batchableWith(first.request()) && images + other.request().batchSize() <= maxBatchImages
                        && queue.remove(other)) {
                    batch.add(other);
                    images += other.request().batchSize();
                }
            }
            runBatch(batch);
        }
    }

    private void checkDeepCache(GenerationRequest r) {
        if (r.deepCacheInterval() > 1 && deepCacheFull == null) {
            throw new IllegalArgumentException("this pipeline has no DeepCache graphs; export it with"
                    + " 'sdrt export-pipeline ... --deepcache-branch 0' to use a cache interval");
        }
    }

    /** Whether the feature cache serves the loop (exact when the interval is 1, so then the plain UNet runs). */
    private FeatureCacheDenoiser featureCache(GenerationRequest r) {
        if (r.deepCacheInterval() <= 1) {
            return null;
        }
        FeatureCacheSchedule schedule = r.deepCacheNonUniform()
                ? FeatureCacheSchedule.nonUniform(r.steps(), r.deepCacheInterval())
                : FeatureCacheSchedule.uniform(r.steps(), r.deepCacheInterval());
        return new FeatureCacheDenoiser(deepCacheFull::run, deepCacheShallow::run, schedule);
    }

    private GenerationRequest resolve(GenerationRequest r) {
        int width = r.width() == 0 ? spec.defaultWidth : r.width();
        int height = r.height() == 0 ? spec.defaultHeight : r.height();
        if (width % spec.vaeScaleFactor != 0 || height % spec.vaeScaleFactor != 0) {
            throw new IllegalArgumentException("width and height must be multiples of " + spec.vaeScaleFactor + ", got "
                    + width + "x" + height);
        }
        return r.withSize(width, height);
    }

    /** Completes every job's future, with its images or with why it failed. */
    private synchronized void runBatch(List<Job> jobs) {
        List<Job> live = new ArrayList<>();
        for (Job job : jobs) {
            if (expired(job)) {
                job.future().completeExceptionally(new TimeoutException("deadline passed before the request started"));
            } else if (!job.abandoned()) {
                live.add(job);
            }
        }
        if (live.isEmpty()) {
            return;
        }
        try {
            List<GeneratedImage> results = denoiseAndDecode(live);
            for (int i = 0; i < live.size(); i++) {
                live.get(i).future().complete(results.get(i));
            }
        } catch (Throwable t) {
            for (Job job : live) {
                job.future().completeExceptionally(t);
            }
        }
    }

    private static boolean expired(Job job) {
        return job.deadline() != null && Instant.now().isAfter(job.deadline());
    }

    private List<GeneratedImage> denoiseAndDecode(List<Job> jobs) {
        GenerationRequest shape = jobs.get(0).request();
        int width = shape.width();
        int height = shape.height();
        boolean guided = shape.usesGuidance();
        int images = jobs.stream().mapToInt(j -> j.request().batchSize()).sum();
        long start = System.nanoTime();

        // Text: [uncond of every image..., cond of every image...] so one UNet call serves both halves.
        List<Tensor> uncond = new ArrayList<>();
        List<Tensor> cond = new ArrayList<>();
        for (Job job : jobs) {
            for (int k = 0; k < job.request().batchSize(); k++) {
                cond.add(encodeText(job.request().prompt()));
                if (guided) {
                    uncond.add(encodeText(job.request().negativePrompt()));
                }
            }
        }
        List<Tensor> texts = new ArrayList<>(uncond);
        texts.addAll(cond);
        Tensor context = concatBatch(texts);
        double textMs = (System.nanoTime() - start) / 1e6;

        SchedulePlan plan = Schedulers.create(shape.scheduler(), schedulerConfig).plan(shape.steps());
        long latentH = height / spec.vaeScaleFactor;
        long latentW = width / spec.vaeScaleFactor;
        int perImage = (int) (spec.latentChannels * latentH * latentW);
        int perBatch = perImage * images;
        // Each request draws its own noise from its own seed, in the order a solo run would.
        List<GaussianNoise> noises = new ArrayList<>();
        float[] latents = new float[perBatch];
        int offset = 0;
        for (Job job : jobs) {
            GaussianNoise noise = new GaussianNoise(job.request().seed());
            noises.add(noise);
            int n = perImage * job.request().batchSize();
            float[] initial = noise.next(n);
            for (int i = 0; i < n; i++) {
                latents[offset + i] = (float) (initial[i] * plan.initNoiseSigma());
            }
            offset += n;
        }
        float[] previousDenoised = new float[perBatch];
        int copies = guided ? 2 : 1;
        long[] unetShape = {(long) images * copies, spec.latentChannels, latentH, latentW};

        FeatureCacheDenoiser cache = featureCache(shape);
        long loopStart = System.nanoTime();
        for (int step = 0; step < plan.size(); step++) {
            checkStillWanted(jobs, step, plan.size());
            PlanStep ps = plan.step(step);
            float[] modelInput = new float[perBatch * copies];
            for (int c = 0; c < copies; c++) {
                for (int i = 0; i < perBatch; i++) {
                    modelInput[c * perBatch + i] = (float) (latents[i] * ps.inputScale());
                }
            }
            float[] timesteps = new float[images * copies];
            Arrays.fill(timesteps, (float) ps.timestep());
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            feeds.put("sample", typed(unet, "sample", Tensor.ofFloats(unetShape, modelInput)));
            feeds.put("timestep", typed(unet, "timestep", Tensor.ofFloats(new long[] {timesteps.length}, timesteps)));
            feeds.put("encoder_hidden_states", typed(unet, "encoder_hidden_states", context));
            Map<String, Tensor> outputs = cache != null ? cache.step(step, feeds) : unet.run(feeds);
            float[] out = outputs.get("out_sample").toFloatArray();
            float[] guidedOut = guided ? ClassifierFreeGuidance.combine(out, perBatch, shape.guidanceScale()) : out;
            plan.applyStep(step, latents, guidedOut, previousDenoised, plan.usesNoise() ? stepNoise(jobs, noises, perImage) : null);
            for (Job job : jobs) {
                job.listener().onStep(step + 1, plan.size());
            }
        }
        double loopMs = (System.nanoTime() - loopStart) / 1e6;

        long vaeStart = System.nanoTime();
        float[] scaled = latents.clone();
        for (int i = 0; i < scaled.length; i++) {
            scaled[i] /= (float) spec.vaeScalingFactor;
        }
        long[] latentShape = {images, spec.latentChannels, latentH, latentW};
        Tensor image = vaeDecoder.run(Map.of("latent_sample", typed(vaeDecoder, "latent_sample", Tensor.ofFloats(latentShape, scaled))))
                .get("sample");
        double vaeMs = (System.nanoTime() - vaeStart) / 1e6;
        long[] imageShape = image.shape();
        if (imageShape[1] != 3 || imageShape[2] != height || imageShape[3] != width) {
            throw new IllegalStateException("VAE decoder returned " + Tensor.formatShape(imageShape) + ", expected [" + images
                    + ", 3, " + height + ", " + width + "]; is vae_scale_factor in " + PipelineSpec.FILE_NAME + " right?");
        }
        byte[][] rgb = toRgb(image.toFloatArray(), images, height, width);

        GeneratedImage.Timings timings = new GeneratedImage.Timings(textMs, loopMs, vaeMs, plan.size());
        List<GeneratedImage> results = new ArrayList<>();
        int first = 0;
        for (Job job : jobs) {
            int n = job.request().batchSize();
            float[] own = Arrays.copyOfRange(latents, first * perImage, (first + n) * perImage);
            results.add(new GeneratedImage(width, height, Arrays.copyOfRange(rgb, first, first + n),
                    Tensor.ofFloats(new long[] {n, spec.latentChannels, latentH, latentW}, own), parameters(job.request()),
                    timings));
            first += n;
        }
        return results;
    }

    /** Stops the batch when nobody wants its result any more; fails jobs whose deadline passed. */
    private static void checkStillWanted(List<Job> jobs, int step, int total) {
        for (Job job : jobs) {
            if (expired(job)) {
                job.future().completeExceptionally(new TimeoutException("deadline passed after step " + step + " of " + total));
            }
        }
        if (jobs.stream().allMatch(Job::abandoned)) {
            throw new CancellationException("cancelled after step " + step + " of " + total);
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

    private Tensor encodeText(String prompt) {
        return promptCache.get(prompt, p -> {
            long[] ids = tokenizer.encodeForModel(p, spec.maxTextLength);
            Tensor input = Tensor.ofLongs(new long[] {1, ids.length}, ids);
            return textEncoder.run(Map.of("input_ids", typed(textEncoder, "input_ids", input))).get("last_hidden_state")
                    .castTo(DType.FLOAT32);
        });
    }

    /** Stacks [1, T, C] tensors along the batch axis, in order. */
    private static Tensor concatBatch(List<Tensor> parts) {
        long[] shape = parts.get(0).shape();
        int each = (int) parts.get(0).numElements();
        float[] all = new float[each * parts.size()];
        for (int i = 0; i < parts.size(); i++) {
            System.arraycopy(parts.get(i).toFloatArray(), 0, all, i * each, each);
        }
        shape[0] = parts.size();
        return Tensor.ofFloats(shape, all);
    }

    /** Casts a feed to the dtype the model declares for that input (fp16 exports take fp16). */
    private static Tensor typed(OrtRunner runner, String input, Tensor t) {
        TensorSpec s = runner.inputs().get(input);
        if (s == null) {
            throw new IllegalStateException(runner.model() + " has no input '" + input + "'; inputs: " + runner.inputs().keySet());
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
        p.put("size", r.width() + "x" + r.height());
        p.put("scheduler", r.scheduler());
        if (r.deepCacheInterval() > 1) {
            p.put("deepcache", r.deepCacheInterval() + (r.deepCacheNonUniform() ? " (non-uniform)" : " (uniform)"));
        }
        p.put("model", spec.arch != null ? spec.arch : folder.getFileName().toString());
        p.put("software", "sdrt (ONNX Runtime CPU)");
        return p;
    }

    @Override
    public void close() {
        closed = true;
        worker.interrupt();
        for (Job job : queue) {
            job.future().completeExceptionally(new CancellationException("pipeline closed"));
        }
        synchronized (this) {
            textEncoder.close();
            unet.close();
            vaeDecoder.close();
            if (deepCacheFull != null) {
                deepCacheFull.close();
                deepCacheShallow.close();
            }
        }
    }
}
