package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU session plans (tools/gpu/gpu-session.sh at the project root) against a stub runner that answers every command with the lines
 * the real tools print, on a clock sped up {@value #SCALE} times, so a 540 s plan runs in a few seconds. The GPU
 * host is lent for minutes at a time: what is checked here is that each plan returns its headline numbers and its
 * logs whatever overruns, which a real session cannot afford to find out.
 */
class GpuSessionPlanTest {

    private static final int SCALE = 120;
    private static final int BUDGET = 540;
    /** lowp builds three SD 1.5 engines one after another: it needs a longer session than checks. */
    private static final int LOWP_BUDGET = 1000;
    /** Simulated seconds between the script reading its clock and printing what it read. */
    private static final int CLOCK_GRAIN = 10;
    /**
     * Simulated seconds a plan may overshoot its budget: a kill's 10 s grace, the summary and the archive, and the
     * real time that forks and the stub's start-up take, which the sped-up clock multiplies (on a loaded machine,
     * a tenth of a real second is 12 simulated ones).
     */
    private static final int SLACK = 150;

    private static final Path SESSION = projectRoot().resolve("tools/gpu/gpu-session.sh");
    private static final Path STUB = Path.of("src/test/resources/gpu-session/stub-gpu-run.sh").toAbsolutePath();

    /**
     * The Maven root, which holds tools/: the parent of the fixtures folder Surefire names ({@code sdrt.fixtures}
     * is the root's testdata/), or else the nearest folder above the working directory that has tools/gpu.
     */
    static Path projectRoot() {
        String fixtures = System.getProperty("sdrt.fixtures");
        if (fixtures != null && !fixtures.isBlank()) {
            Path root = Path.of(fixtures).toAbsolutePath().normalize().getParent();
            if (root != null && Files.isDirectory(root.resolve("tools/gpu"))) {
                return root;
            }
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isDirectory(dir.resolve("tools/gpu"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no tools/gpu folder above " + Path.of("").toAbsolutePath());
    }

    @TempDir
    Path dir;

    @BeforeAll
    static void needsBashAndSetsid() {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/setsid")) || Files.isExecutable(Path.of("/bin/setsid")),
                "the plans need setsid (util-linux)");
    }

    /** What one run of the script left: its stdout and exit code, the results folder, the stub's call log. */
    record Session(int exitCode, String stdout, Path out, List<String> calls) {
        List<String> files() throws IOException {
            try (Stream<Path> files = Files.list(out)) {
                return files.map(f -> f.getFileName().toString()).sorted().toList();
            }
        }

        List<String> archived() throws IOException, InterruptedException {
            Process tar = new ProcessBuilder("tar", "-tzf", out.resolve("logs.tar.gz").toString()).start();
            String listing = new String(tar.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(tar.waitFor()).isZero();
            return listing.lines().toList();
        }

        /** Simulated seconds the plan says it used. */
        int used() {
            String marker = "used ";
            int at = stdout.lastIndexOf(marker);
            assertThat(at).as("summary line with the time used").isPositive();
            return Integer.parseInt(stdout.substring(at + marker.length()).split("s")[0]);
        }
    }

    private Session run(Map<String, String> stub, String... args) throws Exception {
        Process process = start(stub, args);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("plan finishes").isTrue();
        return collect(process);
    }

    private Process start(Map<String, String> stub, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of("bash", SESSION.toString()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("stdout.txt").toFile());
        Map<String, String> env = builder.environment();
        env.put("OUT", dir.resolve("out").toString());
        env.put("SDRT_WORK", dir.resolve("work").toString());
        env.put("SDRT_GPU_RUN", STUB.toString());
        env.put("SDRT_TIME_SCALE", Integer.toString(SCALE));
        env.put("STUB_CALLS", dir.resolve("calls.txt").toString());
        env.put("STUB_SECS", "10");
        env.put("STUB_SECS_SD15BUILD", "250");
        env.putAll(stub);
        return builder.start();
    }

    private Session collect(Process process) throws IOException {
        Path calls = dir.resolve("calls.txt");
        return new Session(process.exitValue(), Files.readString(dir.resolve("stdout.txt")), dir.resolve("out"),
                Files.exists(calls) ? Files.readAllLines(calls) : List.of());
    }

    private static void assertResultsCameBack(Session s) throws Exception {
        assertResultsCameBack(s, BUDGET);
    }

    private static void assertResultsCameBack(Session s, int budget) throws Exception {
        assertThat(s.files()).as("at most 8 files come back from the host").containsExactly("logs.tar.gz", "session.txt");
        assertThat(Files.readString(s.out().resolve("session.txt"))).contains("GPU session");
        // every phase was given a limit that ends within the budget ("[ 103s] passes: start (limit 107s)")
        Matcher start = Pattern.compile("\\[ *(\\d+)s\\] (\\S+): start \\(limit (\\d+)s\\)").matcher(s.stdout());
        while (start.find()) {
            assertThat(Integer.parseInt(start.group(1)) + Integer.parseInt(start.group(3)))
                    .as("end of %s's limit", start.group(2)).isLessThanOrEqualTo(budget + CLOCK_GRAIN);
        }
        assertThat(s.used()).as("simulated seconds used").isLessThanOrEqualTo(budget + SLACK);
    }

    @Test
    void checksPrintItsBudgetFirstThenMeasuresSd15AsSoonAsItIsBuilt() throws Exception {
        // the build ends while the tiny phases still run: one of them is paused for the measurement
        Session s = run(Map.of("STUB_SECS_SD15BUILD", "150"), "checks", Integer.toString(BUDGET));

        assertThat(s.exitCode()).isZero();
        assertThat(s.stdout().indexOf("plan checks, budget 540s")).isZero();
        assertThat(s.stdout().indexOf("sd15-latency           60s")).isLessThan(s.stdout().indexOf(": start"));
        assertThat(s.stdout()).contains("HEADLINE sd15 | CUDA graph replay, median of 100 | 7.710 ms",
                "HEADLINE sd15 | build time | 271.5 s", "| selftest               | ok", "| sd15-profile ");
        assertThat(s.calls()).contains("selftest selftest --opt-level 1");
        // the latency ran while a tiny phase was paused, not after every tiny phase
        assertThat(s.stdout()).contains("pausing the running phase to measure SD 1.5 alone", "resuming the paused phase");
        assertResultsCameBack(s);
        assertThat(s.archived()).contains("logs/selftest.log", "logs/sd15-build.log", "logs/sd15-latency.log",
                "logs/sd15-profile.md", "logs/passes.log");
    }

    @Test
    void checksStillReportTheHeadlineWhenEveryTinyPhaseOverruns() throws Exception {
        Session s = run(Map.of("STUB_HANG", "selftest loopcheck exportpipeline bench"), "checks", Integer.toString(BUDGET));

        assertThat(s.stdout()).contains("HEADLINE sd15 | CUDA graph replay, median of 100 | 7.710 ms");
        assertThat(s.stdout()).contains("| selftest               | TIMED OUT", "| loopcheck              | TIMED OUT");
        assertResultsCameBack(s);
        assertThat(s.archived()).contains("logs/sd15-latency.log");
    }

    @Test
    void checksSayTheHeadlineWasNotMeasuredWhenEverythingOverruns() throws Exception {
        Session s = run(Map.of("STUB_HANG", "selftest loopcheck exportpipeline bench sd15build latency profile"),
                "checks", Integer.toString(BUDGET));

        assertThat(s.stdout()).contains("HEADLINE sd15 not measured: the build did not finish within the budget",
                "| sd15-build             | TIMED OUT");
        assertResultsCameBack(s);
        assertThat(s.archived()).contains("logs/sd15-build.log", "logs/selftest.log");
    }

    @Test
    void checksNameAFailedBuildWithItsLastLines() throws Exception {
        Session s = run(Map.of("STUB_FAIL", "sd15build"), "checks", Integer.toString(BUDGET));

        assertThat(s.stdout()).contains("| sd15-build             | FAILED", "stub: sd15build failed on purpose");
        assertThat(s.calls()).noneMatch(call -> call.startsWith("latency"));
        assertResultsCameBack(s);
    }

    @Test
    void lowpBuildsOneEngineAtATimeAndMeasuresEachAtOnce() throws Exception {
        Session s = run(Map.of("STUB_SECS_BUILD", "60"), "lowp", Integer.toString(LOWP_BUDGET));

        assertThat(s.exitCode()).isZero();
        assertThat(s.stdout().indexOf("plan lowp, budget 1000s")).isZero();
        assertThat(s.stdout()).contains("HEADLINE lowp fp16 | CUDA graph replay", "HEADLINE lowp int8 | CUDA graph replay",
                "HEADLINE lowp fp8 | CUDA graph replay", "HEADLINE lowp int8 vs fp16 | output out_sample | cosine 0.998800");
        List<String> order = s.calls().stream().filter(c -> c.startsWith("build ") || c.startsWith("latency "))
                .map(c -> c.split(" ")[0] + " " + c.replaceAll(".*unet-([a-z0-9]+)\\.(onnx|plan).*", "$1")).toList();
        assertThat(order).startsWith("build fp16", "latency fp16", "build int8", "latency int8", "build fp8", "latency fp8");
        assertThat(s.calls()).filteredOn(c -> c.startsWith("build ")).allMatch(c -> c.contains("--timing-cache")
                && c.contains("--opt-level 1"));
        assertThat(s.stdout()).contains("| engine | build | plan |");
        assertResultsCameBack(s, LOWP_BUDGET);
    }

    @Test
    void lowpGivesTheLaterModesTheirShareWhenABuildOverruns() throws Exception {
        Session s = run(Map.of("STUB_HANG", "build"), "lowp", Integer.toString(LOWP_BUDGET));

        assertThat(s.stdout()).contains("| lowp-build-fp16        | TIMED OUT", "| lowp-build-int8        | TIMED OUT",
                "| lowp-build-fp8         | TIMED OUT");
        assertResultsCameBack(s, LOWP_BUDGET);
    }

    @Test
    void lowpStillPacksItsLogsWhenEverythingOverruns() throws Exception {
        Session s = run(Map.of("STUB_HANG", "exportpipeline"), "lowp", Integer.toString(LOWP_BUDGET));

        assertThat(s.stdout()).contains("| lowp-prepare           | TIMED OUT");
        assertResultsCameBack(s, LOWP_BUDGET);
        assertThat(s.archived()).contains("logs/lowp-prepare.log");
    }

    @Test
    void pipelinePrintsItsTableAndSurvivesAnOverrun() throws Exception {
        Session ok = run(Map.of(), "pipeline", Integer.toString(BUDGET));
        assertThat(ok.stdout()).contains("| CUDA graph", "0.612", "| pipeline               | ok");
        assertResultsCameBack(ok);

        Session cut = run(Map.of("STUB_HANG", "generate"), "pipeline", Integer.toString(BUDGET));
        assertThat(cut.stdout()).contains("| pipeline               | TIMED OUT");
        assertResultsCameBack(cut);
    }

    @Test
    void termPacksTheLogsAndStopsEveryPhase() throws Exception {
        Process process = start(Map.of("STUB_HANG", "selftest sd15build"), "checks", Integer.toString(BUDGET));
        Thread.sleep(1500);
        process.destroy(); // SIGTERM
        assertThat(process.waitFor(20, TimeUnit.SECONDS)).isTrue();
        Session s = collect(process);

        assertThat(s.stdout()).contains("session: interrupted; packing the logs of what ran", "GPU session");
        assertThat(s.files()).containsExactly("logs.tar.gz", "session.txt");
        Thread.sleep(500);
        Process left = new ProcessBuilder("pgrep", "-f", dir.resolve("work").toString()).start();
        assertThat(new String(left.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).as("processes left").isEmpty();
    }

    @Test
    void refusesToRunWithoutABudget() throws Exception {
        Session s = run(Map.of(), "checks");
        assertThat(s.exitCode()).isEqualTo(2);
        assertThat(s.stdout()).contains("usage: gpu-session.sh checks|pipeline|lowp BUDGET_SECONDS");
    }
}
