package dev.sdrt.calibration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.calibration.CalibrationGraph.Tap;
import dev.sdrt.calibration.CalibrationGraph.TapKind;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.QdqPass;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationGraphTest {
    @TempDir
    Path tmp;

    @Test
    void tapsEqualTheAbsoluteMaximaOfTheFullActivations() throws Exception {
        FixtureCase fixture = FixtureCase.named("tiny_sd_unet");
        OnnxModel source = OnnxModel.load(fixture.onnx());
        int nodesBefore = source.graph().nodes().size();
        CalibrationGraph graph = CalibrationGraph.of(source);
        assertThat(source.graph().nodes()).as("the source model is left alone").hasSize(nodesBefore);
        assertThat(graph.modelOutputs()).containsExactly("out_sample");
        // exactly what qdq quantizes: the inputs of 47 Conv, 14 Gemm and 60 Linear MatMuls, each tensor once
        assertThat(graph.taps(TapKind.AMAX).stream().map(Tap::tensor).toList())
                .isEqualTo(QdqPass.quantizableActivations(source.graph()).stream().map(Value::name).toList())
                .hasSize(87);
        assertThat(graph.taps(TapKind.CHANNEL_MAX)).hasSize(37);
        Set<String> outputs = new HashSet<>();
        for (Tap t : graph.taps()) {
            assertThat(t.output()).matches("(amax|chmax)__[A-Za-z0-9_]+");
            assertThat(outputs.add(t.output())).as("unique output %s", t.output()).isTrue();
        }

        // Expose every tapped activation as an output of the same graph, so both come from one run.
        OnnxModel exposed = graph.model();
        Set<String> tensors = new HashSet<>();
        for (Tap t : graph.taps()) {
            Value v = exposed.graph().requireValue(t.tensor());
            if (tensors.add(t.tensor()) && !v.isGraphInput()) {
                v.setType(DataType.FLOAT);
                exposed.graph().addOutput(v);
            }
        }
        Path file = tmp.resolve("exposed.onnx");
        exposed.save(file);
        Map<String, Tensor> out;
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            out = runner.run(fixture.inputs());
        }
        fixture.assertOutputsMatch(Map.of("out_sample", out.get("out_sample")), FixtureCase.FP32_TOLERANCE);

        for (Tap t : graph.taps()) {
            Tensor full = exposedValue(out, fixture.inputs(), t.tensor());
            float[] x = full.toFloatArray();
            float[] tap = out.get(t.output()).toFloatArray();
            if (t.kind() == TapKind.AMAX) {
                float amax = 0;
                for (float v : x) {
                    amax = Math.max(amax, Math.abs(v));
                }
                assertThat(tap).as("amax of %s", t.tensor()).hasSize(1);
                assertThat((double) tap[0]).as("amax of %s", t.tensor()).isCloseTo(amax, org.assertj.core.data.Offset.offset(1e-6 * amax));
            } else {
                int channels = (int) full.dim(full.rank() - 1);
                float[] expected = new float[channels];
                for (int i = 0; i < x.length; i++) {
                    expected[i % channels] = Math.max(expected[i % channels], Math.abs(x[i]));
                }
                assertThat(tap).as("channel max of %s", t.tensor()).hasSize(channels);
                for (int j = 0; j < channels; j++) {
                    assertThat((double) tap[j]).isCloseTo(expected[j], org.assertj.core.data.Offset.offset(1e-6 * expected[j]));
                }
            }
        }
    }

    private static Tensor exposedValue(Map<String, Tensor> out, Map<String, Tensor> inputs, String name) {
        Tensor t = out.get(name);
        return t != null ? t : inputs.get(name);
    }

    @Test
    void sanitizedNamesKeepLettersDigitsAndUnderscores() {
        assertThat(CalibrationGraph.sanitize("/down_blocks.0/attentions.0/Add_output_0")).isEqualTo("_down_blocks_0_attentions_0_Add_output_0");
        assertThat(CalibrationGraph.sanitize("onnx::MatMul_123")).isEqualTo("onnx__MatMul_123");
    }
}
