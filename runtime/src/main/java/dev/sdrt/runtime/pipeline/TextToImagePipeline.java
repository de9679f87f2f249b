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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Text to image for SD 1.x/2.x on ONNX Runtime (CPU): tokenizer → text encoder → denoising loop
 * (UNet + scheduler, classifier-free guidance as one batch-2 UNet call) → VAE decoder → RGB.
 *
 * <p>Everything that varies per step comes from a {@link SchedulePlan} computed on the host before
 * the loop. Safe to share across threads: requests run one at a time on the pipeline's own worker
 * (each one already uses every core).
 */
public final class TextToImagePipeline implements AutoCloseable {
    private final Path folder;
    private final PipelineSpec spec;
    private final ClipTokenizer tokenizer;
    private final SchedulerConfig schedulerConfig;
    private final OrtRunner textEncoder;
    private final OrtRunner unet;
    private final OrtRunner vaeDecoder;
    private final PromptCache promptCache = new PromptCache(64);
    private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "sdrt-pipeline");
        t.setDaemon(true);
        return t;
    });

    private TextToImagePipeline(Path folder, PipelineSpec spec, ClipTokenizer tokenizer, SchedulerConfig schedulerConfig,
            OrtRunner textEncoder, OrtRunner unet, OrtRunner vaeDecoder) {
        this.folder = folder;
        this.spec = spec;
        this.tokenizer = tokenizer;
        this.schedulerConfig = schedulerConfig;
        this.textEncoder = textEncoder;
        this.unet = unet;
        this.vaeDecoder = vaeDecoder;
    }

    /** Opens a pipeline folder written by {@code sdrt export-pipeline}. */
    public static TextToImagePipeline open(Path folder, int threads) throws IOException {
        PipelineSpec spec = PipelineSpec.read(folder);
        ClipTokenizer tokenizer = ClipTokenizer.load(folder.resolve(spec.tokenizer));
        Path schedulerFile = folder.resolve(spec.schedulerConfig);
        SchedulerConfig schedulerConfig = Files.exists(schedulerFile) ? SchedulerConfig.fromJson(schedulerFile)
                : SchedulerConfig.stableDiffusion();
        OrtRunner text = null;
        OrtRunner unet = null;
        try {
            text = runner(folder.resolve(spec.textEncoder), threads);
            unet = runner(folder.resolve(spec.unet), threads);
            OrtRunner vae = runner(folder.resolve(spec.vaeDecoder), threads);
            return new TextToImagePipeline(folder, spec, tokenizer, schedulerConfig, text, unet, vae);
        } catch (RuntimeException e) {
            if (text != null) {
                text.close();
            }
            if (unet != null) {
                unet.close();
            }
            throw e;
        }
    }

    private static OrtRunner runner(Path model, int threads) {
        OrtRunner.Builder b = OrtRunner.builder(model);
        if (threads > 0) {
            b.intraOpThreads(threads);
        }
        return b.build();
    }

    public PipelineSpec spec() {
        return spec;
    }

    /** Queues a request on the pipeline's worker. Cancelling the future stops the loop at the next step. */
    public CompletableFuture<GeneratedImage> submit(GenerationRequest request, StepListener listener) {
        CompletableFuture<GeneratedImage> future = new CompletableFuture<>();
        worker.execute(() -> {
            if (future.isDone()) {
                return; // cancelled while queued
            }
            try {
                future.complete(generate(request, (done, total) -> {
                    if (future.isCancelled()) {
                        throw new CancellationException("cancelled after step " + done + " of " + total);
                    }
                    listener.onStep(done, total);
                }));
            } catch (Throwable t) {
                future.completeExceptionally(t);
            }
        });
        return future;
    }

    /** Runs one request on the calling thread. */
    public synchronized GeneratedImage generate(GenerationRequest request, StepListener listener) {
        int width = request.width() == 0 ? spec.defaultWidth : request.width();
        int height = request.height() == 0 ? spec.defaultHeight : request.height();
        if (width % spec.vaeScaleFactor != 0 || height % spec.vaeScaleFactor != 0) {
            throw new IllegalArgumentException("width and height must be multiples of " + spec.vaeScaleFactor + ", got "
                    + width + "x" + height);
        }
        int batch = request.batchSize();
        boolean guided = request.usesGuidance();
        long start = System.nanoTime();

        // Text: [uncond x batch, cond x batch] so one UNet call computes both halves of the guidance.
        Tensor cond = encodeText(request.prompt());
        Tensor uncond = guided ? encodeText(request.negativePrompt()) : null;
        Tensor context = guided ? concatBatch(List.of(uncond, cond), batch) : concatBatch(List.of(cond), batch);
        double textMs = (System.nanoTime() - start) / 1e6;

        SchedulePlan plan = Schedulers.create(request.scheduler(), schedulerConfig).plan(request.steps());
        long[] latentShape = {batch, spec.latentChannels, height / spec.vaeScaleFactor, width / spec.vaeScaleFactor};
        int perBatch = (int) Tensor.numElements(latentShape);
        GaussianNoise noise = new GaussianNoise(request.seed());
        float[] latents = noise.next(perBatch);
        for (int i = 0; i < latents.length; i++) {
            latents[i] *= (float) plan.initNoiseSigma();
        }
        float[] previousDenoised = new float[perBatch];
        int copies = guided ? 2 : 1;
        long[] unetShape = latentShape.clone();
        unetShape[0] = (long) batch * copies;

        long loopStart = System.nanoTime();
        for (int step = 0; step < plan.size(); step++) {
            PlanStep ps = plan.step(step);
            float[] modelInput = new float[perBatch * copies];
            for (int c = 0; c < copies; c++) {
                for (int i = 0; i < perBatch; i++) {
                    modelInput[c * perBatch + i] = (float) (latents[i] * ps.inputScale());
                }
            }
            float[] timesteps = new float[batch * copies];
            java.util.Arrays.fill(timesteps, (float) ps.timestep());
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            feeds.put("sample", typed(unet, "sample", Tensor.ofFloats(unetShape, modelInput)));
            feeds.put("timestep", typed(unet, "timestep", Tensor.ofFloats(new long[] {timesteps.length}, timesteps)));
            feeds.put("encoder_hidden_states", typed(unet, "encoder_hidden_states", context));
            float[] out = unet.run(feeds).get("out_sample").toFloatArray();
            float[] guidedOut = guided ? guidance(out, perBatch, request.guidanceScale()) : out;
            plan.applyStep(step, latents, guidedOut, previousDenoised, plan.usesNoise() ? noise.next(perBatch) : null);
            listener.onStep(step + 1, plan.size());
        }
        double loopMs = (System.nanoTime() - loopStart) / 1e6;

        long vaeStart = System.nanoTime();
        float[] scaled = latents.clone();
        for (int i = 0; i < scaled.length; i++) {
            scaled[i] /= (float) spec.vaeScalingFactor;
        }
        Tensor image = vaeDecoder.run(Map.of("latent_sample", typed(vaeDecoder, "latent_sample", Tensor.ofFloats(latentShape, scaled))))
                .get("sample");
        double vaeMs = (System.nanoTime() - vaeStart) / 1e6;
        long[] imageShape = image.shape();
        if (imageShape[1] != 3 || imageShape[2] != height || imageShape[3] != width) {
            throw new IllegalStateException("VAE decoder returned " + Tensor.formatShape(imageShape) + ", expected [" + batch
                    + ", 3, " + height + ", " + width + "]; is vae_scale_factor in " + PipelineSpec.FILE_NAME + " right?");
        }
        byte[][] rgb = toRgb(image.toFloatArray(), batch, height, width);
        return new GeneratedImage(width, height, rgb, Tensor.ofFloats(latentShape, latents), parameters(request, width, height),
                new GeneratedImage.Timings(textMs, loopMs, vaeMs, plan.size()));
    }

    /** cond + g * (cond - uncond), with the batch laid out [uncond..., cond...]. */
    private static float[] guidance(float[] out, int perBatch, double scale) {
        float[] guided = new float[perBatch];
        for (int i = 0; i < perBatch; i++) {
            float u = out[i];
            float c = out[perBatch + i];
            guided[i] = (float) (u + scale * (c - u));
        }
        return guided;
    }

    private Tensor encodeText(String prompt) {
        return promptCache.get(prompt, p -> {
            long[] ids = tokenizer.encodeForModel(p, spec.maxTextLength);
            Tensor input = Tensor.ofLongs(new long[] {1, ids.length}, ids);
            return textEncoder.run(Map.of("input_ids", typed(textEncoder, "input_ids", input))).get("last_hidden_state")
                    .castTo(DType.FLOAT32);
        });
    }

    /** Stacks each [1, T, C] tensor {@code repeat} times along the batch axis, in order. */
    private static Tensor concatBatch(List<Tensor> parts, int repeat) {
        long[] shape = parts.get(0).shape();
        int each = (int) parts.get(0).numElements();
        float[] all = new float[each * parts.size() * repeat];
        int offset = 0;
        for (Tensor t : parts) {
            float[] v = t.toFloatArray();
            for (int r = 0; r < repeat; r++) {
                System.arraycopy(v, 0, all, offset, each);
                offset += each;
            }
        }
        shape[0] = (long) parts.size() * repeat;
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

    private Map<String, String> parameters(GenerationRequest r, int width, int height) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("prompt", r.prompt());
        if (!r.negativePrompt().isEmpty()) {
            p.put("negative_prompt", r.negativePrompt());
        }
        p.put("steps", Integer.toString(r.steps()));
        p.put("guidance_scale", Double.toString(r.guidanceScale()));
        p.put("seed", Long.toString(r.seed()));
        p.put("size", width + "x" + height);
        p.put("scheduler", r.scheduler());
        p.put("model", spec.arch != null ? spec.arch : folder.getFileName().toString());
        p.put("software", "sdrt (ONNX Runtime CPU)");
        return p;
    }

    @Override
    public void close() {
        worker.shutdownNow();
        textEncoder.close();
        unet.close();
        vaeDecoder.close();
    }
}
