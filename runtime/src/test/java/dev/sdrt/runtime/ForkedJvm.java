package dev.sdrt.runtime;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a test class's {@code main} in a JVM of its own, on the test classpath: for what one JVM
 * cannot show about itself (what is left on disk after it exits) or must not risk (a small heap).
 */
public final class ForkedJvm {

    /** What the JVM printed (stdout and stderr together) and how it exited. */
    public record Result(int exitCode, String output) {}

    private static final long TIMEOUT_SECONDS = 120;

    private ForkedJvm() {}

    /**
     * Runs {@code mainClass} with {@code jvmOptions} (such as {@code -Xmx64m}) and {@code args},
     * passing on the fixtures location; fails when it runs past {@value #TIMEOUT_SECONDS} seconds.
     */
    public static Result run(Class<?> mainClass, List<String> jvmOptions, List<String> args)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        String fixtures = System.getProperty(Fixtures.PROPERTY);
        if (fixtures != null) {
            command.add("-D" + Fixtures.PROPERTY + "=" + fixtures);
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass.getName());
        command.addAll(args);
        // Output goes to a file rather than a pipe, so that the timeout holds even if the child hangs.
        Path output = Files.createTempFile("forked-jvm", ".log");
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(output.toFile()).start();
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError(mainClass.getName() + " still running after " + TIMEOUT_SECONDS + " s");
            }
            return new Result(process.exitValue(), new String(Files.readAllBytes(output), StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(output);
        }
    }
}
