package dev.sdrt.runtime.ort;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.profile.NodeProfile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OrtProfileTest {

    @TempDir
    Path dir;

    /** A trace in ONNX Runtime's format: a warm-up run and two timed runs of two nodes. */
    private static final String TRACE = """
            [
              {"cat": "Session", "name": "model_loading_uri", "ts": 0, "dur": 50, "args": {}},
              {"cat": "Session", "name": "model_run", "ts": 100, "dur": 90, "args": {}},
              {"cat": "Node", "name": "conv_kernel_time", "ts": 110, "dur": 60, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "relu_kernel_time", "ts": 175, "dur": 10, "args": {"op_name": "Relu"}},
              {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50, "args": {}},
              {"cat": "Node", "name": "conv_fence_before", "ts": 201, "dur": 0, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "conv_kernel_time", "ts": 205, "dur": 30, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "relu_kernel_time", "ts": 240, "dur": 4, "args": {"op_name": "Relu"}},
              {"cat": "Session", "name": "model_run", "ts": 300, "dur": 70, "args": {}},
              {"cat": "Node", "name": "conv_kernel_time", "ts": 305, "dur": 50, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "relu_kernel_time", "ts": 360, "dur": 6, "args": {"op_name": "Relu"}}
            ]
            """;

    @Test
    void traceGivesEachNodeItsMedianAfterTheWarmUp() throws IOException {
        Path trace = Files.writeString(dir.resolve("trace.json"), TRACE);
        OrtProfile profile = OrtProfile.parse(trace, 1);
        List<NodeProfile.Node> nodes = profile.nodes().nodes();
        assertThat(nodes).extracting(NodeProfile.Node::name).containsExactly("conv", "relu");
        assertThat(nodes).extracting(NodeProfile.Node::group).containsExactly("Conv", "Relu");
        assertThat(nodes.get(0).millis()).isCloseTo(0.040, within(1e-12)); // median of 30 and 50 µs
        assertThat(nodes.get(1).millis()).isCloseTo(0.005, within(1e-12));
        assertThat(profile.runMillis()).containsExactly(0.050, 0.070);
        assertThat(profile.medianRunMillis()).isCloseTo(0.060, within(1e-12));
        assertThat(profile.toMarkdown(5)).startsWith("2 nodes, medians of 2 runs on ONNX Runtime (CPU). One run takes 0.060 ms;"
                + " its nodes sum to 0.045 ms").contains("| Conv | 1 | 0.040 | 88.9% |");
    }

    @Test
    void unreadableTracesAreRefusedWithTheirName() throws IOException {
        Path notJson = Files.writeString(dir.resolve("broken.json"), "[{\"cat\": ");
        assertThatThrownBy(() -> OrtProfile.parse(notJson, 0)).isInstanceOf(IOException.class).hasMessageContaining("broken.json");
        Path object = Files.writeString(dir.resolve("object.json"), "{}");
        assertThatThrownBy(() -> OrtProfile.parse(object, 0)).hasMessageContaining("not an ONNX Runtime profile");
        Path trace = Files.writeString(dir.resolve("trace.json"), TRACE);
        assertThatThrownBy(() -> OrtProfile.parse(trace, 3)).hasMessageContaining("holds 3 runs, not more than the 3 warm-up runs");
    }

    /** The tiny SD UNet fixture on ONNX Runtime: every node timed, grouped by op, the trace cleaned up. */
    @Test
    void profilesAFixtureModelAndLeavesNoTrace() throws IOException {
        FixtureCase fixture = FixtureCase.named("tiny_sd_unet");
        long tracesBefore = profileFolders();
        OrtProfile profile = OrtProfile.of(fixture.onnx(), specs -> fixture.inputs(), 1, 3, 1);
        assertThat(profile.runMillis()).hasSize(3);
        assertThat(java.util.Arrays.stream(profile.runMillis()).min().orElseThrow()).isPositive();
        assertThat(profile.nodes().byGroup()).extracting(NodeProfile.Group::label).contains("Conv", "MatMul");
        assertThat(profile.nodes().totalMillis()).isPositive().isLessThanOrEqualTo(profile.medianRunMillis() * 1.5);
        assertThat(profile.toMarkdown(3)).contains("1 threads").contains("| op type | nodes | ms | share |");
        assertThat(profileFolders()).isEqualTo(tracesBefore);
    }

    private static long profileFolders() throws IOException {
        try (Stream<Path> entries = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            return entries.filter(p -> p.getFileName().toString().startsWith("sdrt-ort-profile")).count();
        }
    }
}
