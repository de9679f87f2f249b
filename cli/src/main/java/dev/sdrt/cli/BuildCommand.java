package dev.sdrt.cli;

import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.EngineInfo;
import dev.sdrt.enginebuilder.PrintingBuildProgress;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Value;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sdrt build MODEL.onnx --out ENGINE.plan}: a TensorRT engine with its manifest, reused when nothing changed. */
@Command(name = "build", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Builds a TensorRT engine (strongly typed: precision comes from the graph) and writes ENGINE.plan.json beside it.",
            "An identical earlier build (same model, passes, options, profiles, GPU and TensorRT) is reused."})
final class BuildCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "MODEL.onnx", description = "ONNX model to build (its external data beside it)")
    Path model;

    @Option(names = "--out", paramLabel = "ENGINE.plan", required = true, description = "engine file to write (its manifest goes to ENGINE.plan.json)")
    Path out;

    @Option(names = "--batch", paramLabel = "N|MIN..MAX", defaultValue = "1", description = "batch size or range (default 1)")
    String batch;

    @Option(names = "--height", paramLabel = "PX|MIN..MAX", defaultValue = "512", description = "image height in pixels (default 512)")
    String height;

    @Option(names = "--width", paramLabel = "PX|MIN..MAX", defaultValue = "512", description = "image width in pixels (default 512)")
    String width;

    @Option(names = "--vae-scale-factor", paramLabel = "N", defaultValue = "8",
            description = "image pixels per latent pixel, for models that take latents (default 8)")
    int vaeScaleFactor;

    @Option(names = "--dynamic", description = "keep the ranges dynamic (default: static at the given sizes)")
    boolean dynamic;

    @Option(names = "--opt-level", paramLabel = "0-5", defaultValue = "3",
            description = "TensorRT builder optimization level (default 3; lower builds faster)")
    int optLevel;

    @Option(names = "--timing-cache", paramLabel = "FILE", description = "timing cache read before and saved after the build")
    Path timingCache;

    @Option(names = "--refit", description = "build a refittable engine")
    boolean refit;

    @Option(names = "--pass-spec", paramLabel = "SPEC", defaultValue = "", description = "passes the ONNX went through (recorded in the manifest)")
    String passSpec;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TensorRtChecks.requireTensorRt("ONNX Runtime on the CPU needs no engine: use the .onnx file directly");
        int factor = takesLatents(model) ? vaeScaleFactor : 1;
        EngineBuildRequest request = EngineBuildRequest.builder(model)
                .batch(DimRange.parse(batch))
                .height(scaled(DimRange.parse(height), factor, "--height"))
                .width(scaled(DimRange.parse(width), factor, "--width"))
                .staticShapes(!dynamic)
                .optLevel(optLevel)
                .timingCache(timingCache)
                .refit(refit)
                .passSpec(passSpec)
                .build();
        PrintWriter log = spec.commandLine().getOut();
        EngineCache.Outcome outcome = EngineCache.forThisMachine().buildOrReuse(request, out, new PrintingBuildProgress(System.err));
        log.println(outcome.reused() ? "reused " + out + " (same model, options, GPU and TensorRT)" : "built " + out);
        log.print(EngineInfo.describe(out));
        log.flush();
        return 0;
    }

    /** Image encoders take 3-channel pixels; everything else with a 4-D input takes latents. */
    private static boolean takesLatents(Path onnx) throws java.io.IOException {
        for (Value v : OnnxModel.load(onnx).graph().inputs()) {
            if (v.shape() != null && v.shape().rank() == 4 && v.shape().dim(1).isFixed()) {
                return v.shape().dim(1).value() != 3;
            }
        }
        return true;
    }

    private static DimRange scaled(DimRange pixels, int factor, String option) {
        if (pixels.min() % factor != 0 || pixels.opt() % factor != 0 || pixels.max() % factor != 0) {
            throw new IllegalArgumentException(option + " " + pixels + " must be a multiple of " + factor);
        }
        return new DimRange(pixels.min() / factor, pixels.opt() / factor, pixels.max() / factor);
    }
}
