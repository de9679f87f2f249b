package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.TensorRt;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Runs {@link GpuChecks} without Maven or JUnit, for the GPU host:
 * <pre>
 * java -cp 'app/lib/*' dev.sdrt.enginebuilder.GpuSelfTest [--fixtures DIR] [--work DIR] [--opt-level N]
 * </pre>
 * Prints one line per check and, last, "N passed, M failed"; exits 1 when a check failed and 2 when
 * there is no usable GPU or TensorRT at all.
 */
public final class GpuSelfTest {

    private GpuSelfTest() {}

    public static void main(String[] args) {
        Path fixtures = null;
        Path work = Path.of(System.getProperty("java.io.tmpdir"), "sdrt-gpu-selftest");
        int optLevel = 3;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--fixtures" -> fixtures = Path.of(args[++i]);
                case "--work" -> work = Path.of(args[++i]);
                case "--opt-level" -> optLevel = Integer.parseInt(args[++i]);
                default -> {
                    System.err.println("usage: GpuSelfTest [--fixtures DIR] [--work DIR] [--opt-level N]");
                    System.exit(2);
                }
            }
        }
        if (fixtures == null) {
            fixtures = findFixtures();
        }
        if (!TensorRt.isAvailable()) {
            System.out.println("no usable GPU/TensorRT: " + TensorRt.unavailableReason());
            System.out.println("0 passed, 1 failed");
            System.exit(2);
        }
        System.out.printf("GPU %s (sm %s), CUDA runtime %s, driver CUDA %s, TensorRT %s%n", Cuda.deviceName(),
                Cuda.computeCapability(), Cuda.runtimeVersion(), Cuda.driverVersion(), TensorRt.version());
        System.out.println("fixtures " + fixtures.toAbsolutePath() + ", work " + work.toAbsolutePath());

        GpuChecks checks = new GpuChecks(fixtures, work, optLevel);
        int passed = 0;
        int failed = 0;
        for (GpuChecks.Check check : checks.all()) {
            long started = System.nanoTime();
            try {
                check.body().run();
                passed++;
                System.out.printf(Locale.ROOT, "PASS %-50s %7.2f s%n", check.name(), seconds(started));
            } catch (Throwable t) {
                failed++;
                System.out.printf(Locale.ROOT, "FAIL %-50s %7.2f s%n     %s%n", check.name(), seconds(started), t);
                t.printStackTrace(System.out);
            }
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    private static double seconds(long startedNanos) {
        return (System.nanoTime() - startedNanos) / 1e9;
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
