package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.trt.TrtSeverity;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The small pieces around a TensorRT build that need no GPU: ranges, failure location, log progress. */
class BuildSupportTest {

    @Test
    void dimRangesParseTheCommandLineForms() {
        assertThat(DimRange.parse("2")).isEqualTo(DimRange.fixed(2));
        assertThat(DimRange.parse("1..4")).isEqualTo(new DimRange(1, 4, 4));
        assertThat(DimRange.parse("1..2..4")).isEqualTo(new DimRange(1, 2, 4));
        assertThat(DimRange.parse("1..2..4").toString()).isEqualTo("1..2..4");
        assertThat(new DimRange(1, 2, 4).atOpt()).isEqualTo(DimRange.fixed(2));
        assertThatThrownBy(() -> DimRange.parse("4..1")).hasMessageContaining("min <= opt <= max");
        assertThatThrownBy(() -> DimRange.parse("two")).hasMessageContaining("MIN..OPT..MAX");
        assertThatThrownBy(() -> new DimRange(0, 1, 1)).hasMessageContaining("1 <= min");
    }

    @Test
    void requestValidatesItsSettings() {
        assertThatThrownBy(() -> EngineBuildRequest.builder(java.nio.file.Path.of("m.onnx")).optLevel(6).build())
                .hasMessageContaining("0..5");
        assertThatThrownBy(() -> EngineBuildRequest.builder(java.nio.file.Path.of("m.onnx")).workspaceBytes(-1).build())
                .hasMessageContaining("workspace");
        EngineBuildRequest request = EngineBuildRequest.builder(java.nio.file.Path.of("m.onnx")).passSpec("  fp16 ").build();
        assertThat(request.passSpec()).isEqualTo("fp16");
        assertThat(request.toBuilder().build()).isEqualTo(request);
    }

    @Test
    void failureLocatorFindsTheLongestNodeNameInTheErrors() {
        Map<String, String> ops = Map.of(
                "/down_blocks.0/attentions.0/Reshape", "Reshape",
                "/down_blocks.0/attentions.0/Reshape_1", "Reshape",
                "/conv_in/Conv", "Conv",
                "Add_1", "Add");
        List<String> errors = List.of(
                "[shuffleNode.cpp::symbolicExecute::392] Error Code 4: Internal Error "
                        + "(/down_blocks.0/attentions.0/Reshape_1: IShuffleLayer applied to shape tensor must have 0 or 1 reshape dimensions)");

        assertThat(FailureLocator.locate(errors, ops)).hasValueSatisfying(location -> {
            assertThat(location.nodeName()).isEqualTo("/down_blocks.0/attentions.0/Reshape_1");
            assertThat(location.opType()).isEqualTo("Reshape");
            assertThat(location.toString()).isEqualTo("ONNX node '/down_blocks.0/attentions.0/Reshape_1' (Reshape)");
        });
        assertThat(FailureLocator.locate(List.of("out of memory"), ops)).isEmpty();
    }

    @Test
    void logProgressCountsCostedLayersAndStopsShortOfDone() {
        List<Integer> steps = new ArrayList<>();
        BuildProgress recorder = new BuildProgress() {
            @Override
            public void phaseStart(String phase, String parentPhase, int stepCount) {}

            @Override
            public void stepComplete(String phase, int step) {
                assertThat(phase).isEqualTo("Building engine");
                steps.add(step);
            }

            @Override
            public void phaseFinish(String phase) {}
        };
        LogBuildProgress progress = new LogBuildProgress(recorder, "Building engine", 3);
        progress.message(TrtSeverity.VERBOSE, "=============== Computing costs for /conv_in/Conv");
        progress.message(TrtSeverity.VERBOSE, "Timing Runner: /conv_in/Conv (CaskConvolution)");
        progress.message(TrtSeverity.INFO, "Global timing cache in use.");
        progress.message(TrtSeverity.VERBOSE, "=============== Computing costs for /down/Conv");
        progress.message(TrtSeverity.VERBOSE, "=============== Computing costs for /up/Conv");
        progress.message(TrtSeverity.VERBOSE, "=============== Computing costs for /out/Conv");

        assertThat(steps).containsExactly(0, 1);
        assertThat(progress.completed()).isEqualTo(2);
    }
}
