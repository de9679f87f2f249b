package dev.sdrt.cli;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.loop.TrtLoopDevice;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.LoadListener;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.ToDoubleFunction;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt generate}: text to image, or image to image, on ONNX Runtime on the CPU (the default) or
 * with the denoising loop and VAE decoder on a GPU ({@code --backend tensorrt}: the engines of {@code
 * sdrt build-pipeline}, one synchronization per batch, {@code --cuda-graph} to replay the launches).
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generates images from a prompt with a pipeline folder made by 'sdrt export-pipeline' (SD 1.x/2.x, SDXL"
                + " and SD3 without T5); with --init-image, image to image.",
            "--backend cpu runs everything on ONNX Runtime; --backend tensorrt runs the denoising loop and the VAE decoder on"
                + " the GPU (engines from 'sdrt build-pipeline'), the text encoders on ONNX Runtime."})
final class GenerateCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "DIR", required = true, description = "pipeline folder")
    Path model;

    @Option(names = "--prompt", paramLabel = "TEXT", required = true, description = "what the image shows")
    String prompt;

    @Option(names = {"--negative", "--negative-prompt"}, paramLabel = "TEXT", defaultValue = "",
            description = "what guidance steers away from (default: none)")
    String negativePrompt;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "25", description = "denoising steps (default 25)")
    int steps;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0",
            description = "seed of the starting noise: the same seed, prompt and options give the same image (default 0)")
    long seed;

    @Mixin
    ImageSizeOptions imageSize;

    @Option(names = "--size", paramLabel = "WxH", description = "image size, e.g. 512x512 (same as --width and --height)")
    String size;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "cpu", converter = Backend.Converter.class,
            description = Backend.HELP + "; tensorrt runs the engines of 'sdrt build-pipeline'")
    Backend backend;

    @Option(names = "--cuda-graph", description = "tensorrt: capture the loop's launches once per shape and replay them (CUDA graphs)")
    boolean cudaGraph;

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "1",
            description = "generate N times, printing each run's timings and the median of runs 2..N (the prompt is encoded once"
                    + " and cached, so those time the rest); the last run's images are written")
    int repeat;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "1", description = "images per prompt (default 1)")
    int batch;

    @Option(names = "--init-image", paramLabel = "FILE",
            description = "image to image: start from this picture (PNG, JPEG, BMP); resized to --size when given")
    Path initImage;

    @Option(names = "--strength", paramLabel = "S", defaultValue = "0.8",
            description = "image to image: share of the schedule that runs, in (0, 1]; lower keeps more of the picture (default 0.8)")
    double strength;

    @Option(names = "--init-latents", paramLabel = "FILE.npy",
            description = "start from these latents (float32 .npy, [batch, channels, height/f, width/f]) instead of the"
                    + " seed's draw, as diffusers' latents= argument: scaled by the scheduler's initial sigma; with"
                    + " --init-image, the noise mixed into the encoded picture")
    Path initLatents;

    @Option(names = "--deepcache", paramLabel = "N", defaultValue = "1",
            description = "DeepCache: full UNet every N steps, shallow UNet with the cached feature between (default 1: off)")
    int deepCache;

    @Option(names = "--deepcache-non-uniform", description = "place DeepCache's full steps denser around its centre step")
    boolean deepCacheNonUniform;

    @Option(names = "--out", paramLabel = "FILE.png", defaultValue = "sdrt.png",
            description = "output image; with --batch N, FILE-1.png ... FILE-N.png")
    Path out;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0", description = "CPU threads (default: all cores)")
    int threads;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        boolean onDevice = backend.onDevice();
        if (cudaGraph && !onDevice) {
            throw new IllegalArgumentException("--cuda-graph needs --backend tensorrt: the CPU backend launches no GPU work");
        }
        if (repeat < 1) {
            throw new IllegalArgumentException("--repeat must be at least 1");
        }
        if (backend == Backend.TENSORRT) {
            TensorRtChecks.requireTensorRtBackend("--backend cpu runs without one");
        }
        int width = imageSize.width;
        int height = imageSize.height;
        if (size != null) {
            // 0x0 is allowed: like --width 0 --height 0, it leaves the model's default size.
            ImageSize parsed = ImageSize.parse(size, "--size", 0);
            width = parsed.width();
            height = parsed.height();
        }
        PipelineSpec folder = PipelineSpec.read(model);
        sampling.checkBeforeLoading(folder, width, height);
        OrtCpuCheck.requirePipelineRunnable(model, folder, backend != Backend.TENSORRT);
        GenerationRequest request = GenerationRequest.of(prompt).withNegativePrompt(negativePrompt).withSteps(steps)
                .withGuidanceScale(sampling.guidance).withSeed(seed).withSize(width, height).withBatchSize(batch).withScheduler(sampling.scheduler)
                .withDeepCache(deepCache, deepCacheNonUniform);
        if (initImage != null) {
            RgbImage image = RgbImage.read(initImage);
            if (width != 0 && height != 0) {
                image = image.resized(width, height);
            }
            request = request.withInitImage(image, strength);
        }
        if (initLatents != null) {
            Tensor latents = Npy.read(initLatents);
            if (latents.dtype() != DType.FLOAT32) {
                throw new IllegalArgumentException(initLatents + " holds " + latents.dtype() + "; --init-latents needs float32");
            }
            request = request.withInitialLatents(latents);
        }
        PrintWriter log = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        LoadListener loading = Progress.loadLines(err);
        GeneratedImage result = null;
        List<RunTimings> runs = new ArrayList<>();
        try (LoopDevice device = openDevice();
                Pipeline pipeline = device == null ? Pipeline.open(model, threads, Pipeline.DEFAULT_MAX_BATCH_IMAGES, null, loading)
                        : Pipeline.openOnDevice(model, threads, Pipeline.DEFAULT_MAX_BATCH_IMAGES, device, cudaGraph, loading);
                Progress bar = Progress.start(err, "denoising", steps, "steps", 250)) {
            for (int run = 1; run <= repeat; run++) {
                if (run > 1) {
                    bar.reset();
                }
                long start = System.nanoTime();
                // Image to image runs fewer steps than asked for; the listener says how many.
                result = pipeline.generate(request, (done, total) -> {
                    bar.maxHint(total);
                    bar.stepTo(done);
                });
                RunTimings timings = RunTimings.of(result, (System.nanoTime() - start) / 1e6);
                runs.add(timings);
                if (repeat > 1) {
                    log.println(onDevice ? timings.deviceLine("run " + run + "/" + repeat)
                            : "run " + run + "/" + repeat + ": " + hostLine(result.timings()));
                    log.flush();
                }
            }
        }
        for (int i = 0; i < result.count(); i++) {
            Path file = result.count() == 1 ? out : numbered(out, i + 1);
            result.writePng(i, file);
            log.printf("wrote %s (%dx%d)%n", file, result.width(), result.height());
        }
        GeneratedImage.Timings t = result.timings();
        if (!onDevice) {
            log.println(hostLine(t));
        } else {
            log.printf("text encoder %.0f ms, denoising loop and VAE decoder on %s %.0f ms for %d steps%s%n", t.textEncoderMs(),
                    backend == Backend.TENSORRT ? "the GPU" : "the CPU loop device", t.denoiseMs(), t.steps(),
                    cudaGraph ? (repeat > 1 ? " (replayed CUDA graph)" : " (captured; replays from the next request)") : "");
            if (repeat > 1) {
                log.println(RunTimings.median(runs.subList(1, runs.size())).deviceLine("median of runs 2.." + repeat));
            } else {
                log.println(runs.get(0).deviceLine("device loop"));
            }
        }
        log.flush();
        return 0;
    }

    /** The device to run the loop on, or null for the host loop. */
    private LoopDevice openDevice() {
        return switch (backend) {
            case TENSORRT -> new TrtLoopDevice();
            case CPU_LOOP -> new CpuLoopDevice(threads);
            case CPU -> null;
        };
    }

    /**
     * One run's timings as the device-loop lines report them.
     *
     * @param totalMs          the run's wall time
     * @param loopMs           the denoising loop and the VAE decoder
     * @param msPerStep        the denoising loop per step
     * @param synchronizations the host's waits for the device (a median of runs may be a half)
     * @param uploadMs         the host's upload time, part of the loop's
     * @param enqueueMs        the host's enqueue time, part of the loop's
     * @param waitMs           the host's wait time, part of the loop's
     * @param images           images the run made
     */
    record RunTimings(double totalMs, double loopMs, double msPerStep, double synchronizations, double uploadMs,
            double enqueueMs, double waitMs, int images) {

        static RunTimings of(GeneratedImage r, double wallMs) {
            GeneratedImage.Timings t = r.timings();
            return new RunTimings(wallMs, t.denoiseMs() + t.vaeDecoderMs(), t.denoiseMs() / t.steps(), t.synchronizations(),
                    t.deviceUploadMs(), t.deviceEnqueueMs(), t.deviceWaitMs(), r.count());
        }

        /** Each timing's median over {@code runs} (of one request, so of one image count). */
        static RunTimings median(List<RunTimings> runs) {
            return new RunTimings(median(runs, RunTimings::totalMs), median(runs, RunTimings::loopMs),
                    median(runs, RunTimings::msPerStep), median(runs, RunTimings::synchronizations),
                    median(runs, RunTimings::uploadMs), median(runs, RunTimings::enqueueMs), median(runs, RunTimings::waitMs),
                    runs.get(0).images());
        }

        private static double median(List<RunTimings> runs, ToDoubleFunction<RunTimings> timing) {
            double[] values = runs.stream().mapToDouble(timing).sorted().toArray();
            int n = values.length;
            return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
        }

        /**
         * One line of device-loop timings, in a fixed format that scripts parse ("syncs" per batch; the
         * host's upload, enqueue and wait times add up to the loop's).
         */
        String deviceLine(String label) {
            return String.format(java.util.Locale.ROOT,
                    "%s: total %.1f ms (%.3f s/image), loop %.1f ms (%.2f ms/step), syncs %d, upload %.2f ms, enqueue %.2f ms,"
                            + " wait %.1f ms",
                    label, totalMs, totalMs / images / 1000, loopMs, msPerStep, Math.round(synchronizations), uploadMs, enqueueMs,
                    waitMs);
        }
    }

    private String hostLine(GeneratedImage.Timings t) {
        return String.format("text encoder %.0f ms, %s%d steps %.0f ms (%.1f ms/step), VAE decoder %.0f ms, total %.0f ms",
                t.textEncoderMs(), initImage != null ? String.format("VAE encoder %.0f ms, ", t.vaeEncoderMs()) : "",
                t.steps(), t.denoiseMs(), t.denoiseMs() / t.steps(), t.vaeDecoderMs(), t.totalMs());
    }

    private static Path numbered(Path file, int n) {
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        String ext = dot > 0 ? name.substring(dot) : ".png";
        return file.resolveSibling(stem + "-" + n + ext);
    }
}
