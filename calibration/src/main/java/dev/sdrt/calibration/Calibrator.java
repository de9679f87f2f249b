package dev.sdrt.calibration;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.pipeline.ClassifierFreeGuidance;
import dev.sdrt.runtime.pipeline.GaussianNoise;
import dev.sdrt.runtime.pipeline.PipelineSpec;
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
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Calibration over the real denoising loop of an SD 1.x/2.x pipeline folder on ONNX Runtime (CPU):
 * for each prompt, tokenizer → text encoder → {@code steps} steps of the tapped UNet (batch 2:
 * unconditional and conditional halves for classifier-free guidance, as at inference) with the
 * scheduler's host-made plan → the observations of every step, kept per (prompt, step).
 *
 * <p>Reproducible: prompt {@code i} starts from the same Gaussian latents as {@code sdrt generate
 * --seed (seed + i)} (the pipeline's {@link GaussianNoise}), and nothing else is random, so the
 * same inputs and seed give the same statistics and the same scales file.
 */
public final class Calibrator {

    /**
     * What to run.
     *
     * @param steps denoising steps per prompt
     * @param guidanceScale classifier-free guidance; 1 or less runs the UNet on the conditional batch only
     * @param seed prompt {@code i} uses seed {@code seed + i}
     * @param scheduler a name from {@link Schedulers#NAMES}
     * @param width image width, 0 for the pipeline's default
     * @param height image height, 0 for the pipeline's default
     * @param threads ONNX Runtime intra-op threads, 0 for one per core
     */
    public record Options(int steps, double guidanceScale, long seed, String scheduler, int width, int height, int threads) {
        public Options {
            if (steps < 1 || steps > 1000) {
                throw new IllegalArgumentException("steps must be between 1 and 1000, not " + steps);
            }
            if (!(guidanceScale >= 0)) {
                throw new IllegalArgumentException("guidance scale must not be negative: " + guidanceScale);
            }
            Schedulers.create(scheduler, SchedulerConfig.stableDiffusion()); // fails early on an unknown name
        }

        /** 30 steps, guidance 7.5, seed 0, Euler, the pipeline's default size, every core. */
        public static Options defaults() {
            return new Options(30, 7.5, 0, "euler", 0, 0, 0);
        }

        public Options withSteps(int n) {
            return new Options(n, guidanceScale, seed, scheduler, width, height, threads);
        }

        public Options withSeed(long s) {
            return new Options(steps, guidanceScale, s, scheduler, width, height, threads);
        }

        public Options withSize(int w, int h) {
            return new Options(steps, guidanceScale, seed, scheduler, w, h, threads);
        }

        public Options withThreads(int t) {
            return new Options(steps, guidanceScale, seed, scheduler, width, height, t);
        }

        public Options withScheduler(String name) {
            return new Options(steps, guidanceScale, seed, name, width, height, threads);
        }

        public Options withGuidanceScale(double g) {
            return new Options(steps, g, seed, scheduler, width, height, threads);
        }
    }

    /** Called after each prompt's loop. */
    public interface Progress {
        void onPrompt(int done, int total, String prompt, double seconds);
    }

    /**
     * What a calibration run produced.
     *
     * @param unet the UNet file (its hash goes into the scales header)
     * @param model the UNet as loaded (SmoothQuant reads its weights)
     * @param statistics observations per prompt and step
     * @param width image width that was calibrated
     * @param height image height that was calibrated
     */
    public record Run(Path unet, OnnxModel model, ActivationStatistics statistics, int width, int height) {
    }

    private Calibrator() {
    }

    /**
     * Runs every prompt through the denoising loop of the pipeline in {@code folder} (written by
     * {@code sdrt export-pipeline}) and collects the tap observations.
     *
     * @throws java.nio.file.NoSuchFileException when {@code folder} holds no {@code sdrt-pipeline.json}
     * @throws IllegalArgumentException for an empty prompt list or a size the VAE cannot decode
     */
    public static Run calibratePipeline(Path folder, List<String> prompts, Options options, Progress progress)
            throws IOException {
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no calibration prompts");
        }
        PipelineSpec spec = PipelineSpec.read(folder);
        int width = options.width() == 0 ? spec.defaultWidth : options.width();
        int height = options.height() == 0 ? spec.defaultHeight : options.height();
        if (width % spec.vaeScaleFactor != 0 || height % spec.vaeScaleFactor != 0) {
            throw new IllegalArgumentException("width and height must be multiples of " + spec.vaeScaleFactor + ", got "
                    + width + "x" + height);
        }
        ClipTokenizer tokenizer = ClipTokenizer.load(folder.resolve(spec.tokenizer));
        Path schedulerFile = folder.resolve(spec.schedulerConfig);
        SchedulerConfig schedulerConfig = Files.exists(schedulerFile) ? SchedulerConfig.fromJson(schedulerFile)
                : SchedulerConfig.stableDiffusion();
        SchedulePlan plan = Schedulers.create(options.scheduler(), schedulerConfig).plan(options.steps());
        Path unetFile = folder.resolve(spec.unet);
        OnnxModel unet = OnnxModel.load(unetFile);
        CalibrationGraph graph = CalibrationGraph.of(unet);
        ActivationStatistics stats = new ActivationStatistics(prompts.size(), plan.size());

        OrtRunner.Builder textBuilder = OrtRunner.builder(folder.resolve(spec.textEncoder));
        if (options.threads() > 0) {
            textBuilder.intraOpThreads(options.threads());
        }
        try (OrtRunner textEncoder = textBuilder.build(); TappedModel tapped = TappedModel.open(graph, options.threads())) {
            boolean guided = options.guidanceScale() > 1;
            Tensor uncond = guided ? encode(textEncoder, tokenizer, "", spec.maxTextLength) : null;
            long[] latentShape = {1, spec.latentChannels, height / spec.vaeScaleFactor, width / spec.vaeScaleFactor};
            int perSample = (int) Tensor.numElements(latentShape);
            int copies = guided ? 2 : 1;
            long[] unetShape = latentShape.clone();
            unetShape[0] = copies;
            for (int p = 0; p < prompts.size(); p++) {
                long start = System.nanoTime();
                Tensor cond = encode(textEncoder, tokenizer, prompts.get(p), spec.maxTextLength);
                Tensor context = guided ? concat(uncond, cond) : cond;
                GaussianNoise noise = new GaussianNoise(options.seed() + p);
                float[] latents = noise.next(perSample);
                for (int i = 0; i < latents.length; i++) {
                    latents[i] *= (float) plan.initNoiseSigma();
                }
                float[] previousDenoised = new float[perSample];
                for (int step = 0; step < plan.size(); step++) {
                    PlanStep ps = plan.step(step);
                    float[] modelInput = new float[perSample * copies];
                    for (int c = 0; c < copies; c++) {
                        for (int i = 0; i < perSample; i++) {
                            modelInput[c * perSample + i] = (float) (latents[i] * ps.inputScale());
                        }
                    }
                    float[] timesteps = new float[copies];
                    Arrays.fill(timesteps, (float) ps.timestep());
                    Map<String, Tensor> feeds = new LinkedHashMap<>();
                    feeds.put("sample", typed(tapped, "sample", Tensor.ofFloats(unetShape, modelInput)));
                    feeds.put("timestep", typed(tapped, "timestep", Tensor.ofFloats(new long[] {copies}, timesteps)));
                    feeds.put("encoder_hidden_states", typed(tapped, "encoder_hidden_states", context));
                    TappedModel.Result result = tapped.run(feeds);
                    stats.add(p, step, result.observation());
                    float[] out = result.outputs().get(graph.modelOutputs().get(0)).toFloatArray();
                    float[] guidedOut = guided ? ClassifierFreeGuidance.combine(out, perSample, options.guidanceScale()) : out;
                    plan.applyStep(step, latents, guidedOut, previousDenoised,
                            plan.usesNoise() ? noise.next(perSample) : null);
                }
                if (progress != null) {
                    progress.onPrompt(p + 1, prompts.size(), prompts.get(p), (System.nanoTime() - start) / 1e9);
                }
            }
        }
        return new Run(unetFile, unet, stats, width, height);
    }

    private static Tensor encode(OrtRunner textEncoder, ClipTokenizer tokenizer, String prompt, int maxLength) {
        long[] ids = tokenizer.encodeForModel(prompt, maxLength);
        Tensor input = Tensor.ofLongs(new long[] {1, ids.length}, ids);
        TensorSpec spec = textEncoder.inputs().get("input_ids");
        Tensor feed = spec == null || spec.dtype() == input.dtype() ? input : input.castTo(spec.dtype());
        Tensor hidden = textEncoder.run(Map.of("input_ids", feed)).get("last_hidden_state");
        if (hidden == null) {
            throw new IllegalStateException(textEncoder.model() + " has no output 'last_hidden_state'");
        }
        return hidden.castTo(DType.FLOAT32);
    }

    /** [uncond; cond] along the batch axis. */
    private static Tensor concat(Tensor a, Tensor b) {
        float[] x = a.toFloatArray();
        float[] y = b.toFloatArray();
        float[] all = Arrays.copyOf(x, x.length + y.length);
        System.arraycopy(y, 0, all, x.length, y.length);
        long[] shape = a.shape();
        shape[0] = 2;
        return Tensor.ofFloats(shape, all);
    }

    private static Tensor typed(TappedModel model, String input, Tensor t) {
        TensorSpec s = model.inputs().get(input);
        if (s == null) {
            throw new IllegalStateException("the UNet has no input '" + input + "'; inputs: " + model.inputs().keySet());
        }
        return s.dtype() == t.dtype() ? t : t.castTo(s.dtype());
    }
}
