package dev.sdrt.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.Tensors;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * One reference fixture: its folder, the inputs ({@code in_<name>.npy}) and the expected outputs
 * ({@code out_<name>.npy}) keyed by graph value name. Shared by every module's tests.
 */
public record FixtureCase(String name, Path folder, Map<String, Tensor> inputs, Map<String, Tensor> expected) {

    /** The fixtures' stated agreement for float32 on CPU: max|diff| / max|ref|. */
    public static final double FP32_TOLERANCE = 1e-4;

    public static FixtureCase load(Path folder) {
        Map<String, Tensor> inputs = new TreeMap<>();
        Map<String, Tensor> outputs = new TreeMap<>();
        try (Stream<Path> files = Files.list(folder)) {
            for (Path f : files.sorted().toList()) {
                String file = f.getFileName().toString();
                if (!file.endsWith(".npy")) {
                    continue;
                }
                String stem = file.substring(0, file.length() - 4);
                if (stem.startsWith("in_")) {
                    inputs.put(stem.substring(3), Npy.read(f));
                } else if (stem.startsWith("out_")) {
                    outputs.put(stem.substring(4), Npy.read(f));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new FixtureCase(folder.getFileName().toString(), folder, inputs, outputs);
    }

    public static FixtureCase named(String fixture) {
        return load(Fixtures.model(fixture));
    }

    public static List<FixtureCase> all() {
        return Fixtures.modelFolders().stream().map(FixtureCase::load).toList();
    }

    public Path onnx() {
        return folder.resolve("model.onnx");
    }

    /** Asserts every expected output is present and within {@code tolerance} (max|diff|/max|ref|). */
    public void assertOutputsMatch(Map<String, Tensor> actual, double tolerance) {
        for (var e : expected.entrySet()) {
            Tensor got = actual.get(e.getKey());
            assertThat(got).as("%s: output %s (have %s)", name, e.getKey(), actual.keySet()).isNotNull();
            assertThat(got.shape()).as("%s: shape of %s", name, e.getKey()).isEqualTo(e.getValue().shape());
            double rel = Tensors.maxRelDiff(got, e.getValue());
            assertThat(rel).as("%s: max rel diff of %s (shape %s)", name, e.getKey(), Arrays.toString(got.shape()))
                    .isLessThanOrEqualTo(tolerance);
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
