package dev.sdrt.cli;

import dev.sdrt.calibration.CalibrationMethod;
import dev.sdrt.calibration.Calibrator;
import dev.sdrt.calibration.Prompts;
import dev.sdrt.calibration.ScalesFile;
import dev.sdrt.enginebuilder.BuildEnvironment;
import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.PrintingBuildProgress;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.loop.TrtLoopDevice;
import dev.sdrt.runtime.pipeline.Denoiser;
import dev.sdrt.runtime.pipeline.LoopDeviceDenoiser;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt calibrate}: activation scales for int8/fp8 Q/DQ from the real denoising loop, with the
 * tapped denoiser on ONNX Runtime ({@code cpu}), on the CPU loop device ({@code cpu-loop}: the
 * device path, checked on a CPU) or as a TensorRT engine on the GPU ({@code tensorrt}).
 */
@Command(name = "calibrate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Runs prompts through a pipeline's denoising loop with a tapped UNet and writes the activation scales "
                + "and SmoothQuant factors that 'sdrt optimize --passes qdq --scales FILE' reads.",
            "--backend tensorrt builds the tapped UNet into an engine (kept beside the UNet as X.calibration.plan, reused "
                + "while nothing changes) and runs it on the GPU.",
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

    @Mixin
    SamplingOptions sampling;

    @Mixin
    ImageSizeOptions imageSize;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "cpu", converter = Backend.Converter.class,
            description = "where the tapped UNet runs: " + Backend.HELP + "; tensorrt builds it into an engine")
    Backend backend;

    @Option(names = "--opt-level", paramLabel = "0-5", defaultValue = "3",
            description = "TensorRT builder optimization level of the tapped engine (default 3; --backend tensorrt)")
    int optLevel;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0", description = "CPU threads (default: all cores)")
    int threads;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TensorRtChecks.checkOptLevel(optLevel);
        if (backend == Backend.TENSORRT) {
            TensorRtChecks.requireTensorRtBackend("--backend cpu calibrates without one");
        }
        PipelineSpec folder = PipelineSpec.read(model);
        sampling.checkBeforeLoading(folder, imageSize.width, imageSize.height);
        OrtCpuCheck.requirePipelineRunnable(model, folder, backend != Backend.TENSORRT);
        CalibrationMethod calibrationMethod = CalibrationMethod.parse(method);
        if (!noSmoothQuant && !(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("--alpha must be in [0, 1], got " + alpha);
        }
        Calibrator.Options options = new Calibrator.Options(steps, sampling.guidance, seed, sampling.scheduler, imageSize.width,
                imageSize.height, threads);
        List<String> list = prompts == null ? Prompts.defaults() : Prompts.read(prompts);
        if (promptCount != null) {
            if (promptCount < 1) {
                throw new IllegalArgumentException("--prompt-count must be at least 1, got " + promptCount);
            }
            list = list.subList(0, Math.min(promptCount, list.size()));
        }
        String source = prompts == null ? "sdrt default prompts" : prompts.getFileName().toString();

        PrintWriter log = spec.commandLine().getOut();
        log.printf("calibrating %s: %d prompts x %d steps, method %s, %s, seed %d (%s)%n", model, list.size(),
                steps, calibrationMethod.spec(), noSmoothQuant ? "no SmoothQuant" : "SmoothQuant alpha " + alpha, seed,
                backend.title());
        log.flush();
        long start = System.nanoTime();
        Calibrator.Run run;
        try (LoopDevice device = switch (backend) {
            case CPU_LOOP -> new CpuLoopDevice(threads);
            case TENSORRT -> new TrtLoopDevice();
            case CPU -> null;
        }) {
            Calibrator.Backend on = switch (backend) {
                case CPU_LOOP -> Calibrator.Backend.onDevice(Backend.CPU_LOOP.id(), device);
                case TENSORRT -> tensorRt(device, log);
                case CPU -> Calibrator.Backend.onnxRuntime(threads);
            };
            run = Calibrator.calibratePipeline(model, list, options, on, (done, total, prompt, seconds) -> {
                log.printf("  prompt %d/%d  %5.1f s  %s%n", done, total, seconds, shorten(prompt));
                log.flush();
            });
        }
        String json = ScalesFile.toJson(run, list.size(), source, options, calibrationMethod, noSmoothQuant ? null : alpha,
                createdAt());
        ScalesFile.write(out, json);
        log.printf("%d activations, %d SmoothQuant inputs; wrote %s in %.1f s%n", run.statistics().tensors().size(),
                noSmoothQuant ? 0 : run.statistics().channelTensors().size(), out, (System.nanoTime() - start) / 1e9);
        log.flush();
        return 0;
    }

    /**
     * The tapped denoiser as a TensorRT engine on {@code device}: built from the tapped graph with
     * static shapes at calibration's batch and size ({@link #engineRequest}) into {@link #enginePath},
     * where calibrating again with the same model and settings finds and reuses it.
     */
    private Calibrator.Backend tensorRt(LoopDevice device, PrintWriter log) {
        EngineCache engines = EngineCache.forThisMachine();
        BuildEnvironment gpu = engines.environment();
        return new Calibrator.Backend() {
            @Override
            public String name() {
                return "tensorrt " + gpu.tensorRtVersion() + " on " + gpu.gpuName();
            }

            @Override
            public Denoiser open(Path tappedOnnx, Calibrator.DenoiserShapes shapes) throws IOException {
                EngineBuildRequest request = engineRequest(tappedOnnx, shapes, optLevel, model.resolve("timing.cache"));
                Path plan = enginePath(model, shapes.pipeline());
                log.printf("tapped engine %s: batch %s, latent %sx%s, text %s, opt level %d%n", plan, request.batch().opt(),
                        request.width().opt(), request.height().opt(), request.tokens().opt(), optLevel);
                log.flush();
                long t0 = System.nanoTime();
                EngineCache.Outcome outcome = engines.buildOrReuse(request, plan, new PrintingBuildProgress(System.err));
                log.printf("  %s in %.1f s (%s)%n", outcome.reused() ? "reused" : "built", (System.nanoTime() - t0) / 1e9,
                        ByteSizes.human(Files.size(plan)));
                log.flush();
                return LoopDeviceDenoiser.open(device, outcome.engine());
            }
        };
    }

    /**
     * The engine build of the tapped denoiser: build-pipeline's denoiser profile (latent size = image
     * size / VAE scale factor, the pipeline's text length), static at the batch calibration feeds.
     * The tap outputs stay float32 as the graph declares them, which the loop device binds.
     */
    static EngineBuildRequest engineRequest(Path tappedOnnx, Calibrator.DenoiserShapes shapes, int optLevel, Path timingCache) {
        PipelineSpec pipeline = shapes.pipeline();
        long factor = pipeline.vaeScaleFactor;
        if (shapes.width() % factor != 0 || shapes.height() % factor != 0) {
            throw new IllegalArgumentException("image size " + shapes.width() + "x" + shapes.height()
                    + " must be a multiple of the VAE scale factor " + factor + " in both directions");
        }
        long tokens = pipeline.denoiserTextLength();
        return EngineBuildRequest.builder(tappedOnnx)
                .batch(DimRange.fixed(shapes.batch()))
                .height(DimRange.fixed(shapes.height() / factor))
                .width(DimRange.fixed(shapes.width() / factor))
                .tokens(DimRange.fixed(tokens))
                .staticShapes(true)
                .optLevel(optLevel)
                .timingCache(timingCache)
                .passSpec("calibration-taps")
                .build();
    }

    /** X.calibration.plan beside the pipeline's denoiser X.onnx (apart from build-pipeline's X.plan). */
    static Path enginePath(Path folder, PipelineSpec pipeline) {
        return TrtLoopDevice.besideOnnx(folder.resolve(pipeline.denoiser()), ".calibration.plan");
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
