package dev.sdrt.calibration;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.pipeline.Denoiser;
import dev.sdrt.runtime.pipeline.GaussianNoise;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.LoopDeviceDenoiser;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Calibration over the real denoising loop of a pipeline folder: for each prompt, the pipeline's own
 * loop (text encoders, {@code steps} steps with the unconditional and conditional halves of
 * classifier-free guidance in one batch, the scheduler's host-made plan) runs with a tapped copy of
 * the UNet or transformer, whose observations are kept per (prompt, step). The tapped copy runs on
 * a {@link Backend}: ONNX Runtime (CPU) by default, or a loop device such as a GPU.
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
     * @param scheduler a name from {@link Schedulers#NAMES}, or null for the pipeline family's default
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
            if (scheduler != null && !Schedulers.NAMES.contains(scheduler)) {
                throw new IllegalArgumentException("unknown scheduler '" + scheduler + "'; known: " + Schedulers.NAMES);
            }
        }

        /** 30 steps, guidance 7.5, seed 0, the family's default scheduler and size, every core. */
        public static Options defaults() {
            return new Options(30, 7.5, 0, null, 0, 0, 0);
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

    /**
     * What the tapped denoiser is fed: one image per prompt, so {@code batch} is 2 with classifier-free
     * guidance ([uncond; cond]) and 1 without, at {@code width} × {@code height} image pixels.
     */
    public record DenoiserShapes(PipelineSpec pipeline, int batch, int width, int height) {
    }

    /** Where the tapped denoiser runs. */
    public interface Backend {
        /** What the scales file's header records as the backend. */
        String name();

        /**
         * Opens the tapped graph saved at {@code tappedOnnx} (a temporary file, deleted after the run)
         * as a denoiser that returns every graph output; it will be fed {@code shapes}.
         */
        Denoiser open(Path tappedOnnx, DenoiserShapes shapes) throws IOException;

        /** ONNX Runtime on the CPU with {@code threads} intra-op threads (0: one per core). */
        static Backend onnxRuntime(int threads) {
            return new Backend() {
                @Override
                public String name() {
                    return "onnxruntime-cpu";
                }

                @Override
                public Denoiser open(Path tappedOnnx, DenoiserShapes shapes) throws IOException {
                    return TappedModel.onnxRuntime(threads).open(tappedOnnx);
                }
            };
        }

        /**
         * The tapped ONNX file loaded on {@code device} as it is (a {@link dev.sdrt.runtime.loop.CpuLoopDevice};
         * GPU devices load engines, which need building first). One synchronization per step, which
         * calibration can afford (see {@link LoopDeviceDenoiser}). The device stays the caller's.
         */
        static Backend onDevice(String name, LoopDevice device) {
            return new Backend() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public Denoiser open(Path tappedOnnx, DenoiserShapes shapes) throws IOException {
                    return LoopDeviceDenoiser.open(device, tappedOnnx);
                }
            };
        }
    }

    /** Called after each prompt's loop. */
    public interface Progress {
        void onPrompt(int done, int total, String prompt, double seconds);
    }

    /**
     * What a calibration run produced.
     *
     * @param unet the denoiser file, UNet or SD3 transformer (its hash goes into the scales header)
     * @param model the denoiser as loaded (SmoothQuant reads its weights)
     * @param statistics observations per prompt and step
     * @param width image width that was calibrated
     * @param height image height that was calibrated
     * @param scheduler the scheduler that ran (the family's default when the options named none)
     * @param backend what ran the tapped denoiser ({@link Backend#name()})
     */
    public record Run(Path unet, OnnxModel model, ActivationStatistics statistics, int width, int height, String scheduler,
            String backend) {
    }

    private Calibrator() {
    }

    /**
     * Runs every prompt through the denoising loop of the pipeline in {@code folder} (written by
     * {@code sdrt export-pipeline}; SD 1.x/2.x, SDXL or SD3) with the tapped denoiser on ONNX Runtime
     * (CPU) and collects the tap observations. The loop is the pipeline's own, with the tapped copy of
     * its denoiser in place of the plain one, so the activations seen are exactly those of generation.
     *
     * @throws java.nio.file.NoSuchFileException when {@code folder} holds no {@code sdrt-pipeline.json}
     * @throws IllegalArgumentException for an empty prompt list or a size the VAE cannot decode
     */
    public static Run calibratePipeline(Path folder, List<String> prompts, Options options, Progress progress)
            throws IOException {
        return calibratePipeline(folder, prompts, options, Backend.onnxRuntime(options.threads()), progress);
    }

    /** {@link #calibratePipeline(Path, List, Options, Progress)} with the tapped denoiser on {@code backend}. */
    public static Run calibratePipeline(Path folder, List<String> prompts, Options options, Backend backend, Progress progress)
            throws IOException {
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no calibration prompts");
        }
        PipelineSpec spec = PipelineSpec.read(folder);
        int width = options.width() == 0 ? spec.defaultWidth : options.width();
        int height = options.height() == 0 ? spec.defaultHeight : options.height();
        Path denoiserFile = folder.resolve(spec.denoiser());
        OnnxModel model = OnnxModel.load(denoiserFile);
        CalibrationGraph graph = CalibrationGraph.of(model);
        ActivationStatistics stats = new ActivationStatistics(prompts.size(), options.steps());
        TapRecorder recorder = new TapRecorder(stats);
        DenoiserShapes shapes = new DenoiserShapes(spec, options.guidanceScale() > 1 ? 2 : 1, width, height);
        Denoiser.Opener tappedDenoiser = file -> recorder.denoiser(TappedModel.open(graph, tapped -> backend.open(tapped, shapes)),
                file + " (with calibration taps, on " + backend.name() + ")");
        try (Pipeline pipeline = Pipeline.open(folder, options.threads(), 1, tappedDenoiser)) {
            for (int p = 0; p < prompts.size(); p++) {
                long start = System.nanoTime();
                recorder.startPrompt(p);
                GenerationRequest request = GenerationRequest.of(prompts.get(p)).withSteps(options.steps())
                        .withGuidanceScale(options.guidanceScale()).withSeed(options.seed() + p)
                        .withScheduler(options.scheduler()).withSize(width, height);
                pipeline.generate(request, (done, total) -> { });
                if (progress != null) {
                    progress.onPrompt(p + 1, prompts.size(), prompts.get(p), (System.nanoTime() - start) / 1e9);
                }
            }
        }
        String scheduler = options.scheduler() != null ? options.scheduler() : spec.family().defaultScheduler();
        return new Run(denoiserFile, model, stats, width, height, scheduler, backend.name());
    }

    /** The tapped denoiser: passes the model's outputs on and files each step's observation under (prompt, step). */
    private static final class TapRecorder {
        private final ActivationStatistics stats;
        private int prompt;
        private int step;

        TapRecorder(ActivationStatistics stats) {
            this.stats = stats;
        }

        void startPrompt(int p) {
            prompt = p;
            step = 0;
        }

        Denoiser denoiser(TappedModel tapped, String name) {
            return new Denoiser() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public Map<String, TensorSpec> inputs() {
                    return tapped.inputs();
                }

                @Override
                public Map<String, Tensor> run(Map<String, Tensor> inputs) {
                    TappedModel.Result result = tapped.run(inputs);
                    stats.add(prompt, step++, result.observation());
                    return result.outputs();
                }

                @Override
                public void close() {
                    tapped.close();
                }
            };
        }
    }
}
