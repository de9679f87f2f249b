package dev.sdrt.cli;

import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sdrt demo}: the whole pipeline on the CPU with a small random-weight model, no download. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Exports a small Stable Diffusion-architecture pipeline with random weights, runs it on ONNX Runtime (CPU)"
                + " and writes a PNG.",
            "The weights are random, so the picture is noise: the demo shows the machinery works end to end."})
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "sdrt-demo", description = "folder for the pipeline and the image (default sdrt-demo)")
    Path out;

    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "a lighthouse on a cliff at dawn, oil painting",
            description = "what the image shows (default: ${DEFAULT-VALUE})")
    String prompt;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "20", description = "denoising steps (default ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "42", description = "seed of the starting noise (default ${DEFAULT-VALUE})")
    long seed;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter log = spec.commandLine().getOut();
        long start = System.nanoTime();
        Path model = out.resolve("tiny-sd");
        log.println("1/2 exporting a tiny SD pipeline (text encoder, UNet, VAE decoder) with RANDOM weights to " + model);
        PipelineFolder.random("tiny", 0, model, ExportOptions.defaults(), 0, log, spec.commandLine().getErr());
        log.printf("2/2 generating \"%s\" (%d steps, euler, guidance 7.5, DeepCache off) on ONNX Runtime, CPU%n", prompt, steps);
        Path image = out.resolve("demo.png");
        try (Pipeline pipeline = Pipeline.open(model, 0)) {
            GeneratedImage result = pipeline.generate(GenerationRequest.of(prompt).withSteps(steps).withSeed(seed).withSize(64, 64),
                    (done, total) -> { });
            result.writePng(0, image);
            GeneratedImage.Timings t = result.timings();
            log.printf("wrote %s (%dx%d, %d bytes): %.1f ms per UNet step, %.0f ms in all%n", image, result.width(),
                    result.height(), Files.size(image), t.denoiseMs() / t.steps(), t.totalMs());
        }
        log.println("The weights are random, so the image is noise. For real pictures, export a diffusers checkpoint:");
        log.println("  sdrt export-pipeline --from path/to/stable-diffusion-v1-5 --out sd15 && sdrt generate --model sd15 --prompt \"...\"");
        log.printf("demo done in %.1f s%n", (System.nanoTime() - start) / 1e9);
        log.flush();
        return 0;
    }
}
