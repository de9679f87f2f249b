package dev.sdrt.runtime.ort;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.ForkedJvm;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ONNX Runtime's libraries are deleted only when the JVM exits, so this runs a model in a JVM of its
 * own, with {@code java.io.tmpdir} pointed at a fresh directory, and looks at that directory after.
 */
class OrtNativeLibrariesTest {

    @Test
    void loadingOnnxRuntimeLeavesNothingInTheTempDirectoryAfterExit(@TempDir Path temp) throws Exception {
        Path tmpdir = Files.createDirectory(temp.resolve("tmpdir"));
        Path model = new TinyOnnx()
                .input("x", TinyOnnx.FLOAT, 2L)
                .identity("x", "y")
                .output("y", TinyOnnx.FLOAT, 2L)
                .write(temp.resolve("identity.onnx"));

        ForkedJvm.Result result = ForkedJvm.run(OrtNativeLibrariesTest.class,
                List.of("-Djava.io.tmpdir=" + tmpdir), List.of(model.toString()));

        assertThat(result.exitCode()).as(result.output()).isZero();
        // Without this line the test would also pass if ONNX Runtime stopped extracting there at all.
        assertThat(result.output()).as("while running").contains("extracted to " + OrtNativeLibraries.EXTRACTION_DIRECTORY_PREFIX);
        assertThat(extractionDirectories(tmpdir)).as("after exit").isEmpty();
    }

    /** In the forked JVM: runs the model at {@code args[0]} once and says where the libraries went. */
    public static void main(String[] args) throws IOException {
        try (OrtRunner runner = OrtRunner.builder(Path.of(args[0])).intraOpThreads(1).build()) {
            runner.run(Map.of("x", Tensor.ofFloats(new long[] {2}, new float[] {1, 2})));
            for (String directory : extractionDirectories(Path.of(System.getProperty("java.io.tmpdir")))) {
                System.out.println("extracted to " + directory);
            }
        }
    }

    private static List<String> extractionDirectories(Path tmpdir) throws IOException {
        try (Stream<Path> entries = Files.list(tmpdir)) {
            return entries.map(entry -> entry.getFileName().toString())
                    .filter(name -> name.startsWith(OrtNativeLibraries.EXTRACTION_DIRECTORY_PREFIX))
                    .toList();
        }
    }
}
