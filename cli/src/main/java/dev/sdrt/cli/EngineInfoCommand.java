package dev.sdrt.cli;

import dev.sdrt.enginebuilder.EngineInfo;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sdrt engine-info ENGINE.plan}: the manifest, I/O and, with a GPU, the engine's device memory. */
@Command(name = "engine-info", mixinStandardHelpOptions = true,
        description = "Shows how an engine was built (from ENGINE.plan.json) and whether it can run on this machine.")
final class EngineInfoCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "ENGINE.plan", description = "engine built by 'sdrt build' or 'sdrt build-pipeline'")
    Path engine;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        spec.commandLine().getOut().print(EngineInfo.describe(engine));
        spec.commandLine().getOut().flush();
        return 0;
    }
}
