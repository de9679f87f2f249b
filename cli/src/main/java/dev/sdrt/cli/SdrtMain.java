package dev.sdrt.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code sdrt} command: export, inspect and run diffusion models. */
@Command(name = "sdrt", mixinStandardHelpOptions = true, versionProvider = SdrtMain.Version.class,
        description = "Turns diffusion models into fast inference engines and runs them from Java.",
        subcommands = {BenchCommand.class, BuildCommand.class, BuildPipelineCommand.class, CalibrateCommand.class, DemoCommand.class, EngineInfoCommand.class, ExportCommand.class, ExportPipelineCommand.class, GenerateCommand.class, GpuCommand.class, InspectCommand.class, OptimizeCommand.class, ProfileCommand.class, RunOnnxCommand.class, CommandLine.HelpCommand.class})
public final class SdrtMain implements Runnable {

    /** The process's stderr: the one writer a progress bar may redraw itself on (see {@link Progress#isTerminal}). */
    static final PrintWriter STDERR = new PrintWriter(System.err, true);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(execute(args, new PrintWriter(System.out, true), STDERR));
    }

    /** Runs one command line; returns the exit code (0 ok, 1 failure, 2 bad usage). */
    public static int execute(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cli = new CommandLine(new SdrtMain());
        cli.setOut(out);
        cli.setErr(err);
        // help as wide as the terminal, so fewer lines break inside a word such as "1.x" or "config.json"
        // (Java's line breaker allows a break after a dot); 80 columns where there is no terminal
        cli.setUsageHelpAutoWidth(true);
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            // Users get the message, which names the problem; the stack trace only when asked for.
            commandLine.getErr().println("sdrt " + commandLine.getCommandName() + ": error: " + describe(ex));
            if (System.getenv("SDRT_DEBUG") != null) {
                ex.printStackTrace(commandLine.getErr());
            }
            commandLine.getErr().flush();
            return ex instanceof IllegalArgumentException ? 2 : 1;
        });
        return cli.execute(args);
    }

    private static String describe(Throwable ex) {
        String message = ex.getMessage();
        if (ex instanceof java.nio.file.NoSuchFileException) {
            return "file not found: " + message;
        }
        return message != null ? message : ex.getClass().getSimpleName();
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = SdrtMain.class.getPackage().getImplementationVersion();
            return new String[] {"sdrt " + (v != null ? v : "0.1.0-SNAPSHOT")};
        }
    }
}
