package dev.sdrt.cli;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.scheduler.Schedulers;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sdrt generate}: text to image, or image to image, on the embedded default backend (ONNX Runtime, CPU). */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generates images from a prompt with a pipeline folder made by 'sdrt export-pipeline' (ONNX Runtime, CPU):",
            "SD 1.x/2.x, SDXL and SD3 (without T5). With --init-image: image to image."})
final class GenerateCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "DIR", required = true, description = "pipeline folder")
    Path model;

    @Option(names = "--prompt", paramLabel = "TEXT", required = true)
    String prompt;

    @Option(names = {"--negative", "--negative-prompt"}, paramLabel = "TEXT", defaultValue = "")
    String negativePrompt;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "25", description = "denoising steps (default 25)")
    int steps;

    @Option(names = "--guidance", paramLabel = "G", defaultValue = "7.5", description = "classifier-free guidance scale (default 7.5)")
    double guidance;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0")
    long seed;

    @Option(names = "--width", paramLabel = "W", defaultValue = "0", description = "image width (default: the model's)")
    int width;

    @Option(names = "--height", paramLabel = "H", defaultValue = "0", description = "image height (default: the model's)")
    int height;

    @Option(names = "--size", paramLabel = "WxH", description = "image size, e.g. 512x512 (same as --width and --height)")
    String size;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "cpu", description = "cpu (ONNX Runtime, the default) or tensorrt")
    String backend;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "1", description = "images per prompt (default 1)")
    int batch;

    @Option(names = "--scheduler", paramLabel = "NAME",
            description = "ddim, euler, euler-a, dpm++2m, dpm++2m-karras, flow-euler (default: euler, or flow-euler for SD3)")
    String scheduler;

    @Option(names = "--init-image", paramLabel = "FILE",
            description = "image to image: start from this picture (PNG, JPEG, BMP); resized to --size when given")
    Path initImage;

    @Option(names = "--strength", paramLabel = "S", defaultValue = "0.8",
            description = "image to image: share of the schedule that runs, in (0, 1]; lower keeps more of the picture (default 0.8)")
    double strength;

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
        if (backend.equals("tensorrt")) {
            throw new IllegalStateException("the TensorRT backend of sdrt generate is not implemented yet; use --backend cpu"
                    + " (engines can already be built with 'sdrt build')");
        } else if (!backend.equals("cpu")) {
            throw new IllegalArgumentException("--backend must be cpu or tensorrt, not '" + backend + "'");
        }
        if (size != null) {
            String[] wh = size.toLowerCase(java.util.Locale.ROOT).split("x");
            try {
                if (wh.length != 2) {
                    throw new NumberFormatException();
                }
                width = Integer.parseInt(wh[0].trim());
                height = Integer.parseInt(wh[1].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--size must look like 512x512, not '" + size + "'");
            }
        }
        if (scheduler != null && !Schedulers.NAMES.contains(scheduler)) {
            throw new IllegalArgumentException("unknown scheduler '" + scheduler + "'; choose one of " + String.join(", ", Schedulers.NAMES));
        }
        GenerationRequest request = GenerationRequest.of(prompt).withNegativePrompt(negativePrompt).withSteps(steps)
                .withGuidanceScale(guidance).withSeed(seed).withSize(width, height).withBatchSize(batch).withScheduler(scheduler)
                .withDeepCache(deepCache, deepCacheNonUniform);
        if (initImage != null) {
            RgbImage image = RgbImage.read(initImage);
            if (width != 0 && height != 0) {
                image = image.resized(width, height);
            }
            request = request.withInitImage(image, strength);
        }
        PrintWriter log = spec.commandLine().getOut();
        GeneratedImage result;
        try (Pipeline pipeline = Pipeline.open(model, threads);
                ProgressBar bar = new ProgressBarBuilder().setTaskName("denoising").setInitialMax(steps)
                        .setConsumer(new ConsoleProgressBarConsumer(System.err)).setUpdateIntervalMillis(250).build()) {
            // Image to image runs fewer steps than asked for; the listener says how many.
            result = pipeline.generate(request, (done, total) -> bar.maxHint(total).stepTo(done));
        }
        for (int i = 0; i < result.count(); i++) {
            Path file = result.count() == 1 ? out : numbered(out, i + 1);
            result.writePng(i, file);
            log.printf("wrote %s (%dx%d)%n", file, result.width(), result.height());
        }
        GeneratedImage.Timings t = result.timings();
        log.printf("text encoder %.0f ms, %s%d steps %.0f ms (%.1f ms/step), VAE decoder %.0f ms, total %.0f ms%n",
                t.textEncoderMs(), initImage != null ? String.format("VAE encoder %.0f ms, ", t.vaeEncoderMs()) : "",
                t.steps(), t.denoiseMs(), t.denoiseMs() / t.steps(), t.vaeDecoderMs(), t.totalMs());
        log.flush();
        return 0;
    }

    private static Path numbered(Path file, int n) {
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        String ext = dot > 0 ? name.substring(dot) : ".png";
        return file.resolveSibling(stem + "-" + n + ext);
    }
}
