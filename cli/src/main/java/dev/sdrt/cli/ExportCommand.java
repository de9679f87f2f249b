package dev.sdrt.cli;

import dev.sdrt.exporter.Component;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.Exporter;
import dev.sdrt.graphs.OnnxModel;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sdrt export}: a diffusers checkpoint, or a built-in architecture with random weights, to ONNX. */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Exports a diffusers component (config.json + safetensors) to ONNX, in pure Java.",
            "With --arch and --random-weights, exports a component of a built-in architecture with seeded random weights (no"
                + " download)."})
final class ExportCommand implements Callable<Integer> {

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--from", paramLabel = "DIR", description = "component folder with config.json and safetensors")
        Path from;

        @Option(names = "--arch", paramLabel = "ARCH", completionCandidates = Architectures.class,
                description = "built-in architecture: ${COMPLETION-CANDIDATES}")
        String arch;
    }

    @Option(names = "--out", paramLabel = "FILE.onnx", required = true, description = "output model (weights over 256 MiB go to a data file beside it, FILE.onnx.<content hash>.data)")
    Path out;

    @Option(names = "--component", paramLabel = "NAME", completionCandidates = ComponentNames.class,
            description = "${COMPLETION-CANDIDATES} (default: from config.json)")
    String component;

    @Option(names = "--precision", paramLabel = "P", defaultValue = "fp32", description = "fp32 (default), fp16 or bf16")
    String precision;

    @Option(names = "--random-weights", description = "with --arch: seeded random weights")
    boolean randomWeights;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "seed for --random-weights (default 0)")
    long seed;

    @Option(names = "--static", description = "fixed batch, size and sequence length instead of dynamic axes")
    boolean staticShapes;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "1", description = "batch for --static (default 1)")
    long batch;

    @Option(names = "--height", paramLabel = "H", defaultValue = "64",
            description = "height for --static, in the input's own pixels (latent for UNet/VAE decoder; default 64)")
    long height;

    @Option(names = "--width", paramLabel = "W", defaultValue = "64", description = "width for --static (default 64)")
    long width;

    @Option(names = "--sequence", paramLabel = "N", defaultValue = "77", description = "text length for --static (default 77)")
    long sequence;

    /** The components by their command-line names, for the --component help. */
    static final class ComponentNames implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return Arrays.stream(Component.values()).map(Component::cliName).iterator();
        }
    }

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        ExportOptions options = ExportOptions.defaults().withPrecision(Precisions.parse(precision));
        if (staticShapes) {
            options = options.withStaticShapes(batch, height, width, sequence);
        }
        PrintWriter out = spec.commandLine().getOut();
        long start = System.nanoTime();
        Exporter.Result result;
        if (source.arch != null) {
            if (!randomWeights) {
                throw new IllegalArgumentException("--arch exports need --random-weights: sdrt downloads no checkpoints"
                        + " (use --from DIR for real weights)");
            }
            if (component == null) {
                throw new IllegalArgumentException("--arch needs --component; " + source.arch + " has: "
                        + Exporter.componentsOf(source.arch));
            }
            result = Exporter.random(source.arch, Component.fromCliName(component), seed, options);
        } else {
            if (randomWeights) {
                throw new IllegalArgumentException("--random-weights goes with --arch, not --from");
            }
            if (!Files.isDirectory(source.from)) {
                throw new IllegalArgumentException("--from " + source.from + " is not a folder");
            }
            result = Exporter.fromCheckpoint(source.from, component == null ? null : Component.fromCliName(component), options);
        }
        double buildSeconds = (System.nanoTime() - start) / 1e9;
        out.printf("exporting %s (%s, %s), %,d parameters, %d nodes (graph built in %.1f s)%n", result.component(),
                result.modelClass(), precision, result.parameterCount(), result.model().graph().nodes().size(), buildSeconds);
        if (!result.unusedTensors().isEmpty()) {
            spec.commandLine().getErr().printf("warning: %d checkpoint tensors were not used, e.g. %s%n",
                    result.unusedTensors().size(), result.unusedTensors().subList(0, Math.min(5, result.unusedTensors().size())));
        }
        out.flush();
        ModelSaving.saveShowingProgress(result.model(), this.out, spec.commandLine().getErr());
        StringBuilder data = new StringBuilder();
        for (Path file : OnnxModel.externalDataFiles(this.out)) {
            data.append(" + ").append(file.getFileName()).append(" (").append(ByteSizes.human(Files.size(file))).append(')');
        }
        out.printf("wrote %s (%s)%s in %.1f s%n", this.out, ByteSizes.human(Files.size(this.out)), data,
                (System.nanoTime() - start) / 1e9);
        out.flush();
        return 0;
    }
}
