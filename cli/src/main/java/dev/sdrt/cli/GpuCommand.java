package dev.sdrt.cli;

import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.TensorRt;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt gpu}: the checks and measurements that need an NVIDIA GPU, for the GPU host, where there is no
 * Maven and no JUnit launcher ({@code tools/gpu/gpu-run.sh} calls these). {@code selftest} and {@code loopcheck}
 * run {@link GpuChecks} and {@link DeviceLoopGpuChecks} (the same checks the JUnit suite tagged "gpu" runs) and
 * print one PASS or FAIL line per check and, last, "N passed, M failed"; they exit 1 when a check failed and 2
 * when there is no usable GPU or TensorRT. {@code bench} builds and times engines ({@link GpuBench}). The checks'
 * own details and the bench table go to the process's standard output; the PASS/FAIL lines to the command's
 * writer, which {@code sdrt} flushes on every line, so the two stay in order.
 */
@Command(name = "gpu", mixinStandardHelpOptions = true,
        description = "GPU host checks and engine measurements (need an NVIDIA GPU and TensorRT).",
        subcommands = {GpuCommand.SelfTest.class, GpuCommand.LoopCheck.class, GpuCommand.Bench.class})
final class GpuCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** One named check of either suite. */
    record NamedCheck(String name, GpuChecks.Body body) {}

    /** PASS/FAIL lines with each check's time, then "N passed, M failed"; 0 when all passed, else 1. */
    static int runChecks(List<NamedCheck> checks, int nameWidth, PrintWriter out) {
        int passed = 0;
        int failed = 0;
        for (NamedCheck check : checks) {
            long started = System.nanoTime();
            try {
                check.body().run();
                passed++;
                out.printf(Locale.ROOT, "PASS %-" + nameWidth + "s %7.2f s%n", check.name(), seconds(started));
            } catch (Throwable t) {
                failed++;
                out.printf(Locale.ROOT, "FAIL %-" + nameWidth + "s %7.2f s%n     %s%n", check.name(), seconds(started), t);
                t.printStackTrace(out);
            }
            out.flush();
        }
        out.println(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }

    /** False (having said why, and counted it as one failed check) when there is no usable GPU or TensorRT. */
    private static boolean gpuAvailable(PrintWriter out) {
        if (TensorRt.isAvailable()) {
            return true;
        }
        out.println("no usable GPU/TensorRT: " + TensorRt.unavailableReason());
        out.println("0 passed, 1 failed");
        return false;
    }

    private static double seconds(long startedNanos) {
        return (System.nanoTime() - startedNanos) / 1e9;
    }

    @Command(name = "selftest", mixinStandardHelpOptions = true,
            description = "The engine builder's and the TensorRT runtime's GPU checks on the tiny SD UNet fixture.")
    static final class SelfTest implements Callable<Integer> {

        @Option(names = "--fixtures", paramLabel = "DIR",
                description = "Folder holding tiny_sd_unet/ (default: fixtures/ or testdata/ in the working directory).")
        Path fixtures;

        @Option(names = "--work", paramLabel = "DIR", description = "Scratch folder for engines and caches (default: ${DEFAULT-VALUE}).")
        Path work = Path.of(System.getProperty("java.io.tmpdir"), "sdrt-gpu-selftest");

        @Option(names = "--opt-level", paramLabel = "N", description = "Builder optimization level of the shared engine (default: ${DEFAULT-VALUE}).")
        int optLevel = 3;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            Path dir = fixtures != null ? fixtures : findFixtures();
            if (!gpuAvailable(out)) {
                return 2;
            }
            out.printf("GPU %s (sm %s), CUDA runtime %s, driver CUDA %s, TensorRT %s%n", Cuda.deviceName(),
                    Cuda.computeCapability(), Cuda.runtimeVersion(), Cuda.driverVersion(), TensorRt.version());
            out.println("fixtures " + dir.toAbsolutePath() + ", work " + work.toAbsolutePath());
            List<NamedCheck> checks = new GpuChecks(dir, work, optLevel).all().stream()
                    .map(c -> new NamedCheck(c.name(), c.body())).toList();
            return runChecks(checks, 50, out);
        }

        /** fixtures/ (the staged GPU app) or testdata/ (the repository root) from the working directory. */
        private static Path findFixtures() {
            for (String candidate : new String[] {"fixtures", "testdata"}) {
                Path path = Path.of(candidate);
                if (Files.isDirectory(path.resolve("tiny_sd_unet"))) {
                    return path;
                }
            }
            return Path.of("fixtures");
        }
    }

    @Command(name = "loopcheck", mixinStandardHelpOptions = true,
            description = "The device loop on TensorRT against the host loop on ONNX Runtime (tiny pipeline, engines from build-pipeline).")
    static final class LoopCheck implements Callable<Integer> {

        @Option(names = "--work", paramLabel = "DIR", description = "Scratch folder for the pipeline and its engines (default: ${DEFAULT-VALUE}).")
        Path work = Path.of(System.getProperty("java.io.tmpdir"), "sdrt-loop-gpu");

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            if (!gpuAvailable(out)) {
                return 2;
            }
            out.printf("GPU %s (sm %s), TensorRT %s, work %s%n", Cuda.deviceName(), Cuda.computeCapability(),
                    TensorRt.version(), work.toAbsolutePath());
            List<NamedCheck> checks = new DeviceLoopGpuChecks(work).all().stream()
                    .map(c -> new NamedCheck(c.name(), c.body()::run)).toList();
            return runChecks(checks, 60, out);
        }
    }

    @Command(name = "bench", mixinStandardHelpOptions = true,
            description = "Builds a TensorRT engine and measures it (CUDA events; eager and CUDA-graph replay); one table, printed last.",
            subcommands = {Bench.Build.class, Bench.Latency.class, Bench.All.class, Bench.Compare.class})
    static final class Bench implements Runnable {

        @Spec
        CommandSpec spec;

        @Override
        public void run() {
            spec.commandLine().usage(spec.commandLine().getOut());
        }

        static final class BuildOptions {
            @Option(names = "--onnx", required = true, paramLabel = "X", description = "The ONNX graph to build.")
            Path onnx;

            @Option(names = "--out", required = true, paramLabel = "Y", description = "The engine file to write.")
            Path out;

            @Option(names = "--batch", paramLabel = "N|MIN..OPT..MAX", description = "Batch range (default: ${DEFAULT-VALUE}).")
            String batch = "1..1..4";

            @Option(names = "--height", paramLabel = "H", description = "Latent height range (default: ${DEFAULT-VALUE}).")
            String height = "64";

            @Option(names = "--width", paramLabel = "W", description = "Latent width range (default: ${DEFAULT-VALUE}).")
            String width = "64";

            @Option(names = "--tokens", paramLabel = "T", description = "Token count range (default: ${DEFAULT-VALUE}).")
            String tokens = "77";

            @Option(names = "--static", description = "Build for the opt values only (min = opt = max).")
            boolean staticShapes;

            @Option(names = "--opt-level", paramLabel = "N", description = "Builder optimization level (default: ${DEFAULT-VALUE}).")
            int optLevel = 3;

            @Option(names = "--workspace-mib", paramLabel = "N", description = "Workspace limit in MiB (0: TensorRT's default).")
            long workspaceMib;

            @Option(names = "--timing-cache", paramLabel = "F", description = "Timing cache file, read and updated.")
            Path timingCache;

            @Option(names = "--refit", description = "A refittable engine (weights swappable without a rebuild).")
            boolean refit;

            @Option(names = "--no-tf32", description = "TF32 off (float32 stays float32).")
            boolean noTf32;

            @Option(names = "--pass-spec", paramLabel = "S", description = "The passes the graph went through, recorded in the manifest.")
            String passSpec = "";

            GpuBench.BuildOptions options() {
                return new GpuBench.BuildOptions(onnx, out, batch, height, width, tokens, staticShapes, optLevel,
                        workspaceMib, timingCache, refit, !noTf32, passSpec);
            }
        }

        static final class TimingOptions {
            @Option(names = "--runs", paramLabel = "N", description = "Timed calls, at least 100 (default: ${DEFAULT-VALUE}).")
            int runs = 100;

            @Option(names = "--warmup", paramLabel = "N", description = "Untimed calls first (default: ${DEFAULT-VALUE}).")
            int warmup = 20;

            int runs() {
                return Math.max(100, runs);
            }
        }

        /** Runs {@code body} on a fresh table and prints it; 2 without a GPU. */
        static int withBench(CommandSpec spec, BenchBody body) throws Exception {
            if (!TensorRt.isAvailable()) {
                spec.commandLine().getErr().println("GpuBench needs a GPU and TensorRT: " + TensorRt.unavailableReason());
                return 2;
            }
            GpuBench bench = new GpuBench();
            body.run(bench);
            bench.printTable();
            return 0;
        }

        @FunctionalInterface
        interface BenchBody {
            void run(GpuBench bench) throws Exception;
        }

        @Command(name = "build", mixinStandardHelpOptions = true, description = "Builds (or reuses) the engine.")
        static final class Build implements Callable<Integer> {
            @Spec
            CommandSpec spec;

            @Mixin
            BuildOptions build = new BuildOptions();

            @Override
            public Integer call() throws Exception {
                return withBench(spec, bench -> bench.build(build.options()));
            }
        }

        @Command(name = "latency", mixinStandardHelpOptions = true, description = "Times an engine's calls.")
        static final class Latency implements Callable<Integer> {
            @Spec
            CommandSpec spec;

            @Option(names = "--engine", required = true, paramLabel = "Y", description = "The engine to time.")
            Path engine;

            @Mixin
            TimingOptions timing = new TimingOptions();

            @Override
            public Integer call() throws Exception {
                return withBench(spec, bench -> bench.latency(engine, timing.runs(), timing.warmup));
            }
        }

        @Command(name = "all", mixinStandardHelpOptions = true, description = "Builds (or reuses) the engine, then times it.")
        static final class All implements Callable<Integer> {
            @Spec
            CommandSpec spec;

            @Mixin
            BuildOptions build = new BuildOptions();

            @Mixin
            TimingOptions timing = new TimingOptions();

            @Override
            public Integer call() throws Exception {
                return withBench(spec, bench -> bench.latency(bench.build(build.options()), timing.runs(), timing.warmup));
            }
        }

        @Command(name = "compare", mixinStandardHelpOptions = true,
                description = "One call of two engines of one graph on the same seeded inputs: per output, cosine and max relative difference.")
        static final class Compare implements Callable<Integer> {
            @Spec
            CommandSpec spec;

            @Option(names = "--engine", required = true, paramLabel = "Y", description = "The engine to compare.")
            Path engine;

            @Option(names = "--reference", required = true, paramLabel = "Z", description = "The reference engine (fp16, say).")
            Path reference;

            @Override
            public Integer call() throws Exception {
                return withBench(spec, bench -> bench.compare(engine, reference));
            }
        }
    }
}
