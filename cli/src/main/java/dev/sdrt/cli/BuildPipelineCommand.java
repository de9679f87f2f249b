package dev.sdrt.cli;

import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.PrintingBuildProgress;
import dev.sdrt.enginebuilder.pipeline.PipelineEngines;
import dev.sdrt.enginebuilder.pipeline.PipelineEngines.Shapes;
import dev.sdrt.enginebuilder.pipeline.PipelineEngines.Target;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.ToIntFunction;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt build-pipeline --model DIR}: a TensorRT engine {@code X.plan} (with its manifest
 * {@code X.plan.json}) beside every ONNX file {@code X.onnx} that {@code sdrt generate --backend
 * tensorrt} runs on the GPU: the denoiser, the VAE decoder, both scheduler-step graphs and DeepCache's
 * full and shallow UNets when the folder has them. The text encoders and the VAE encoder stay on ONNX
 * Runtime. Engines whose model, options, GPU and TensorRT did not change are reused, so an interrupted
 * run picks up where it stopped.
 *
 * <p>Which engine each component gets, and with which profile, is {@link PipelineEngines}'; this
 * command turns its options into {@link Shapes} and builds. Static engines (the default) serve
 * exactly one batch and size of guided requests.
 */
@Command(name = "build-pipeline", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Builds the TensorRT engines that 'sdrt generate --backend tensorrt' runs: X.plan and its manifest"
                + " X.plan.json beside each X.onnx of the folder (denoiser, VAE decoder, scheduler-step graphs, DeepCache graphs).",
            "Engines already built from the same model and options on this GPU are reused."})
final class BuildPipelineCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "DIR", required = true, description = "pipeline folder (from 'sdrt export-pipeline')")
    Path model;

    @Option(names = "--batch", paramLabel = "N|MIN..MAX", defaultValue = "1",
            description = "images per request, or a range with --dynamic (default 1); guidance doubles the denoiser's batch")
    String batch;

    @Option(names = "--size", paramLabel = "WxH", description = "image size, e.g. 512x512 (default: the pipeline's)")
    String size;

    @Option(names = "--sizes", paramLabel = "WxH", split = ",",
            description = "several image sizes, e.g. 512x512,768x512: dynamic engines covering them (the first is the one optimized for)")
    List<String> sizes;

    @Option(names = "--dynamic", description = "dynamic batch and size ranges (default: static engines at the given batch and size)")
    boolean dynamic;

    @Option(names = "--opt-level", paramLabel = "0-5", defaultValue = "3", description = "TensorRT builder optimization level (default 3)")
    int optLevel;

    @Option(names = "--timing-cache", paramLabel = "FILE",
            description = "timing cache read before and saved after each build (default: DIR/timing.cache)")
    Path timingCache;

    @Option(names = "--no-tf32", description = "float32 layers in full float32, not TF32 (for checks against the CPU)")
    boolean noTf32;

    @Option(names = "--only", paramLabel = "NAME", split = ",",
            description = "build only these: denoiser, vae_decoder, scheduler_step, scheduler_step_guided, deepcache_full, deepcache_shallow")
    List<String> only;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PipelineSpec pipeline = PipelineSpec.read(model);
        Shapes shapes = shapes(pipeline);
        PrintWriter log = spec.commandLine().getOut();
        if (shapes.dynamic() && !dynamic) {
            log.println("several sizes: building dynamic engines (a static engine holds one size)");
        }
        Path cache = timingCache != null ? timingCache : model.resolve("timing.cache");
        List<Target> targets = PipelineEngines.targets(model, pipeline, shapes, optLevel, cache, !noTf32, only);
        TensorRtChecks.requireTensorRt("'sdrt generate --backend cpu' needs no engines");

        EngineCache engines = EngineCache.forThisMachine();
        long started = System.nanoTime();
        for (int i = 0; i < targets.size(); i++) {
            Target t = targets.get(i);
            log.printf("[%d/%d] %s: %s -> %s (%s)%n", i + 1, targets.size(), t.component(), t.onnx().getFileName(),
                    t.plan().getFileName(), describe(t.request()));
            log.flush();
            long t0 = System.nanoTime();
            EngineCache.Outcome outcome = engines.buildOrReuse(t.request(), t.plan(), new PrintingBuildProgress(System.err));
            log.printf("      %s in %.1f s: %s, profile %s%n", outcome.reused() ? "reused" : "built", (System.nanoTime() - t0) / 1e9,
                    ByteSizes.human(Files.size(t.plan())), outcome.profile().inputs());
            log.flush();
        }
        log.printf("%d engines ready in %s (%.1f s); run: sdrt generate --model %s --backend tensorrt%s --prompt \"...\"%n",
                targets.size(), model, (System.nanoTime() - started) / 1e9, model,
                shapes.dynamic() ? "" : " --size " + shapes.width().opt() + "x" + shapes.height().opt()
                        + (shapes.images().opt() > 1 ? " --batch " + shapes.images().opt() : ""));
        if (!shapes.dynamic()) {
            log.println("static engines serve guided requests (guidance > 1) of exactly that batch and size; --dynamic for others");
        }
        log.flush();
        return 0;
    }

    private static String describe(EngineBuildRequest r) {
        StringBuilder text = new StringBuilder("batch ").append(r.batch());
        r.dimOverrides().forEach((k, v) -> text.append(", ").append(k).append(' ').append(v));
        return text.append(", latent ").append(r.width()).append('x').append(r.height()).append(", text ").append(r.tokens())
                .append(r.staticShapes() ? ", static" : ", dynamic").append(", opt level ").append(r.optLevel())
                .append(r.tf32() ? "" : ", no TF32").toString();
    }

    /** The sizes the options ask for, checked against the pipeline. */
    Shapes shapes(PipelineSpec pipeline) {
        if (size != null && sizes != null) {
            throw new IllegalArgumentException("give --size or --sizes, not both");
        }
        DimRange images = DimRange.parse(batch);
        if (!dynamic && !images.isFixed()) {
            throw new IllegalArgumentException("--batch " + batch + " is a range: add --dynamic (a static engine has one batch)");
        }
        List<ImageSize> all = new ArrayList<>();
        if (sizes != null) {
            for (String s : sizes) {
                all.add(ImageSize.parse(s, "--sizes", 1));
            }
        } else if (size != null) {
            all.add(ImageSize.parse(size, "--size", 1));
        } else {
            all.add(new ImageSize(pipeline.defaultWidth, pipeline.defaultHeight));
        }
        for (ImageSize imageSize : all) {
            if (imageSize.width() % pipeline.vaeScaleFactor != 0 || imageSize.height() % pipeline.vaeScaleFactor != 0) {
                throw new IllegalArgumentException("image size " + imageSize + " must be a multiple of the VAE scale factor "
                        + pipeline.vaeScaleFactor + " in both directions");
            }
        }
        DimRange width = range(all, ImageSize::width);
        DimRange height = range(all, ImageSize::height);
        boolean isDynamic = dynamic || !width.isFixed() || !height.isFixed();
        return new Shapes(images, height, width, isDynamic);
    }

    /** min, first (optimized for), max of one axis of the sizes. */
    private static DimRange range(List<ImageSize> sizes, ToIntFunction<ImageSize> axis) {
        int min = sizes.stream().mapToInt(axis).min().orElseThrow();
        int max = sizes.stream().mapToInt(axis).max().orElseThrow();
        return new DimRange(min, axis.applyAsInt(sizes.get(0)), max);
    }
}
