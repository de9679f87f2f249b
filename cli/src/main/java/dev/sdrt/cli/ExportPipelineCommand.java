package dev.sdrt.cli;

import dev.sdrt.exporter.ExportOptions;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sdrt export-pipeline}: every component of an SD 1.x/2.x, SDXL or SD3 pipeline, ready for {@code sdrt generate}. */
@Command(name = "export-pipeline", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Exports the text encoder(s), UNet or transformer, VAE decoder and VAE encoder of an SD 1.x/2.x, SDXL or SD3"
                + " pipeline into one folder for 'sdrt generate'.",
            "SD3's T5 encoder is left out: the transformer gets zero T5 tokens.",
            "With --arch and --random-weights: a built-in architecture with seeded random weights."})
final class ExportPipelineCommand implements Callable<Integer> {

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--from", paramLabel = "DIR", description = "diffusers pipeline folder (with model_index.json)")
        Path from;

        @Option(names = "--arch", paramLabel = "ARCH", completionCandidates = Architectures.class,
                description = "built-in architecture: ${COMPLETION-CANDIDATES}")
        String arch;
    }

    @Option(names = "--out", paramLabel = "DIR", required = true, description = "pipeline folder to write")
    Path out;

    @Option(names = "--precision", paramLabel = "P", defaultValue = "fp32", description = "fp32 (default), fp16 or bf16")
    String precision;

    @Option(names = "--random-weights", description = "with --arch: seeded random weights")
    boolean randomWeights;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "seed for --random-weights (default 0)")
    long seed;

    @Option(names = "--deepcache-branch", paramLabel = "B",
            description = "also write DeepCache's full and shallow UNets, caching the feature of up-block branch B (0 = shallowest)")
    Integer deepCacheBranch;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        ExportOptions options = ExportOptions.defaults().withPrecision(Precisions.parse(precision));
        PrintWriter log = spec.commandLine().getOut();
        long start = System.nanoTime();
        if (source.arch != null) {
            if (!randomWeights) {
                throw new IllegalArgumentException("--arch needs --random-weights: sdrt downloads no checkpoints");
            }
            log.printf("exporting %s pipeline with random weights (seed %d) to %s%n", source.arch, seed, out);
            PipelineFolder.random(source.arch, seed, out, options, deepCacheBranch, log, spec.commandLine().getErr());
        } else {
            log.printf("exporting pipeline %s to %s%n", source.from, out);
            PipelineFolder.fromDiffusers(source.from, out, options, deepCacheBranch, log, spec.commandLine().getErr());
        }
        log.printf("done in %.1f s; run it with: sdrt generate --model %s --prompt \"...\"%n", (System.nanoTime() - start) / 1e9, out);
        log.flush();
        return 0;
    }
}
