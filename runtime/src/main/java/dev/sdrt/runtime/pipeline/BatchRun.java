package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;

/**
 * One batch's flow through a pipeline's parts: text conditioning → starting latents → denoise
 * stage (loop and VAE decode) → images. It holds no lock and no queue; the {@link BatchWorker}
 * runs it under its model lock, one batch at a time.
 */
final class BatchRun {
    private final Path folder;
    private final PipelineSpec spec;
    private final PipelineFamily family;
    private final SchedulerConfig schedulerConfig;
    private final TextConditioner conditioner;
    /** Null when the folder has no VAE encoder (text to image only). */
    private final OrtRunner vaeEncoder;
    private final DenoiseStage stage;

    BatchRun(PipelineParts parts) {
        this.folder = parts.folder();
        this.spec = parts.spec();
        this.family = parts.family();
        this.schedulerConfig = parts.schedulerConfig();
        this.conditioner = parts.conditioner();
        this.vaeEncoder = parts.vaeEncoder();
        this.stage = parts.stage();
    }

    /**
     * Runs {@code jobs} as one batch: text conditioning for every image ([uncond...; cond...] when
     * guided), the starting latents (each request from its own seed, or its initial image through the
     * VAE encoder), the denoise stage, then 8-bit images per request. Called under the worker's
     * model lock; the jobs share a size, step count, scheduler and guidance.
     */
    List<GeneratedImage> run(List<Job> jobs) {
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
            textFeeds.put(name, TensorSpec.castToInput(stage.denoiserInputs(), stage.denoiserName(), name,
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
        Tensor feed = TensorSpec.castToInput(vaeEncoder.inputs(), vaeEncoder.model().toString(), "sample", pixels);
        Tensor latent = vaeEncoder.run(Map.of("sample", feed)).get("latent");
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

    /** DeepCache's schedule, or null when the plain denoiser serves the loop (interval 1 is exactly that). */
    private static FeatureCacheSchedule featureCache(GenerationRequest r, int steps) {
        int interval = Math.min(r.deepCacheInterval(), steps);
        if (interval <= 1) {
            return null;
        }
        return r.deepCacheNonUniform() ? FeatureCacheSchedule.nonUniform(steps, interval)
                : FeatureCacheSchedule.uniform(steps, interval);
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
}
