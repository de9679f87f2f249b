package dev.sdrt.cli;

import dev.sdrt.enginebuilder.EngineInfo;
import dev.sdrt.enginebuilder.EngineKernelProfile;
import dev.sdrt.runtime.trt.KernelProfile;
import dev.sdrt.runtime.trt.TensorRt;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt engine-info ENGINE.plan [--profile]}: the manifest, I/O and, with a GPU, the engine's
 * device memory and (with --profile) where its time goes, kernel by kernel.
 */
@Command(name = "engine-info", mixinStandardHelpOptions = true,
        description = "Shows how an engine was built (from ENGINE.plan.json) and whether it can run on this machine; "
                + "with --profile (GPU), times every kernel of one call and groups them by what they do and in which precision.")
final class EngineInfoCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "ENGINE.plan")
    Path engine;

    @Option(names = "--profile", description = "Time every kernel of one call on seeded random inputs at the opt shapes (needs a GPU).")
    boolean profile;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "20", description = "Replays the kernel medians are taken over (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--top", paramLabel = "N", defaultValue = "25", description = "Slowest kernels to list (default: ${DEFAULT-VALUE}).")
    int top;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (profile && (runs < 1 || top < 0)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "--runs must be at least 1 and --top at least 0, got " + runs + " and " + top);
        }
        if (profile && !TensorRt.isAvailable()) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "--profile runs the engine, which needs an NVIDIA GPU and TensorRT: " + TensorRt.unavailableReason());
        }
        PrintWriter out = spec.commandLine().getOut();
        out.print(EngineInfo.describe(engine));
        if (profile) {
            KernelProfile kernels = EngineKernelProfile.of(engine, runs);
            out.println();
            out.print(kernels.toMarkdown(top));
        }
        out.flush();
        return 0;
    }
}
