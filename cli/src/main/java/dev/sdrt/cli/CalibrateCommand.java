package dev.sdrt.cli;

import dev.sdrt.calibration.CalibrationMethod;
import dev.sdrt.calibration.Calibrator;
import dev.sdrt.calibration.Prompts;
import dev.sdrt.calibration.ScalesFile;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sdrt calibrate}: activation scales for int8/fp8 Q/DQ from the real denoising loop. */
@Command(name = "calibrate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Runs prompts through a pipeline's denoising loop (ONNX Runtime, CPU) with a tapped UNet and writes the "
                + "activation scales and SmoothQuant factors that 'sdrt optimize --passes qdq --scales FILE' reads.",
            "The file's date comes from SOURCE_DATE_EPOCH when set, so reruns can be byte-identical."})
final class CalibrateCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "DIR", required = true, description = "pipeline folder (from 'sdrt export-pipeline')")
    Path model;

    @Option(names = "--out", paramLabel = "FILE.json", required = true, description = "scales file to write")
    Path out;

    @Option(names = "--prompts", paramLabel = "FILE", description = "one prompt per line, '#' comments (default: sdrt's 32 prompts)")
    Path prompts;

    @Option(names = "--prompt-count", paramLabel = "N", description = "use only the first N prompts")
    Integer promptCount;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "30", description = "denoising steps per prompt (default 30)")
    int steps;

    @Option(names = "--method", paramLabel = "M", defaultValue = "max",
            description = "max, percentile:P (e.g. percentile:99.9) or mean-min (default max)")
    String method;

    @Option(names = "--alpha", paramLabel = "A", defaultValue = "0.8", description = "SmoothQuant alpha in [0, 1] (default 0.8)")
    double alpha;

    @Option(names = "--no-smoothquant", description = "write no SmoothQuant factors")
    boolean noSmoothQuant;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "prompt i starts from seed N+i (default 0)")
    long seed;

    @Option(names = "--guidance", paramLabel = "G", defaultValue = "7.5", description = "classifier-free guidance scale (default 7.5)")
    double guidance;

    @Option(names = "--scheduler", paramLabel = "NAME",
            description = "ddim, euler, euler-a, dpm++2m, dpm++2m-karras, flow-euler (default: euler, or flow-euler for SD3)")
    String scheduler;

    @Option(names = "--width", paramLabel = "W", defaultValue = "0", description = "image width (default: the model's)")
    int width;

    @Option(names = "--height", paramLabel = "H", defaultValue = "0", description = "image height (default: the model's)")
    int height;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "cpu", description = "cpu (ONNX Runtime) or tensorrt (default cpu)")
    String backend;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0", description = "CPU threads (default: all cores)")
    int threads;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        switch (backend.toLowerCase(Locale.ROOT)) {
            case "cpu" -> { }
            case "tensorrt" -> throw new UnsupportedOperationException(
                    "--backend tensorrt: calibration on TensorRT is not available in this build; use --backend cpu");
            default -> throw new IllegalArgumentException("unknown backend '" + backend + "'; backends are cpu and tensorrt");
        }
        CalibrationMethod calibrationMethod = CalibrationMethod.parse(method);
        if (!noSmoothQuant && !(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("--alpha must be in [0, 1], got " + alpha);
        }
        Calibrator.Options options = new Calibrator.Options(steps, guidance, seed, scheduler, width, height, threads);
        List<String> list = prompts == null ? Prompts.defaults() : Prompts.read(prompts);
        if (promptCount != null) {
            if (promptCount < 1) {
                throw new IllegalArgumentException("--prompt-count must be at least 1, got " + promptCount);
            }
            list = list.subList(0, Math.min(promptCount, list.size()));
        }
        String source = prompts == null ? "sdrt default prompts" : prompts.getFileName().toString();

        PrintWriter log = spec.commandLine().getOut();
        log.printf("calibrating %s: %d prompts x %d steps, method %s, %s, seed %d (ONNX Runtime CPU)%n", model, list.size(),
                steps, calibrationMethod.spec(), noSmoothQuant ? "no SmoothQuant" : "SmoothQuant alpha " + alpha, seed);
        log.flush();
        long start = System.nanoTime();
        Calibrator.Run run = Calibrator.calibratePipeline(model, list, options, (done, total, prompt, seconds) -> {
            log.printf("  prompt %d/%d  %5.1f s  %s%n", done, total, seconds, shorten(prompt));
            log.flush();
        });
        String json = ScalesFile.toJson(run, list.size(), source, options, calibrationMethod, noSmoothQuant ? null : alpha,
                createdAt());
        ScalesFile.write(out, json);
        log.printf("%d activations, %d SmoothQuant inputs; wrote %s in %.1f s%n", run.statistics().tensors().size(),
                noSmoothQuant ? 0 : run.statistics().channelTensors().size(), out, (System.nanoTime() - start) / 1e9);
        log.flush();
        return 0;
    }

    /** Now, or SOURCE_DATE_EPOCH (seconds since 1970) when set, for reproducible files. */
    static Instant createdAt() {
        String epoch = System.getenv("SOURCE_DATE_EPOCH");
        if (epoch == null || epoch.isBlank()) {
            return Instant.now();
        }
        try {
            return Instant.ofEpochSecond(Long.parseLong(epoch.trim()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("SOURCE_DATE_EPOCH must be seconds since 1970, not '" + epoch + "'");
        }
    }

    private static String shorten(String prompt) {
        return prompt.length() <= 70 ? prompt : prompt.substring(0, 67) + "...";
    }
}
