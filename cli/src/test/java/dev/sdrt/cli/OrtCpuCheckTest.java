package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.inputArgs;
import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.graphs.passes.QdqPass;
import dev.sdrt.graphs.passes.Scales;
import dev.sdrt.runtime.FixtureCase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What ONNX Runtime's CPU provider cannot run, refused in sdrt's words before a session is made:
 * the old code passed these models on and printed ONNX Runtime's kernel errors.
 */
class OrtCpuCheckTest {
    @TempDir
    Path tmp;

    private static final FixtureCase UNET = FixtureCase.named("tiny_sd_unet");

    /** The tiny UNet fixture after {@code spec} and, when {@code qdq} is not null, Q/DQ of that mode. */
    private Path rewritten(String name, String spec, QdqPass.Mode qdq) throws Exception {
        OnnxModel model = OnnxModel.load(UNET.onnx());
        if (spec != null) {
            PassPipeline.parse(spec).run(model);
        }
        if (qdq != null) {
            Map<String, Float> amax = new HashMap<>();
            for (Node n : model.graph().nodes()) {
                if ((n.is("Conv") || n.is("MatMul") || n.is("Gemm")) && n.input(0) != null) {
                    amax.put(n.input(0).name(), 1f);
                }
            }
            QdqPass.builder(qdq).scales(Scales.of(amax)).build().apply(model);
        }
        Path file = tmp.resolve(name + ".onnx");
        model.save(file);
        return file;
    }

    private CliTest.Result runOnnx(Path model) {
        List<String> args = new ArrayList<>(List.of("run-onnx", model.toString()));
        args.addAll(inputArgs(UNET));
        args.addAll(List.of("--output-dir", tmp.resolve("out").toString()));
        return sdrt(args.toArray(String[]::new));
    }

    @Test
    void runOnnxSaysWhyBf16Fp8AndHalfScaledInt8CannotRunOnTheCpu() throws Exception {
        CliTest.Result bf16 = runOnnx(rewritten("bf16", "bf16", null));
        assertThat(bf16.code()).isEqualTo(2);
        assertThat(bf16.err()).contains("bf16.onnx computes in bfloat16").contains("fp32 or fp16").contains("TensorRT")
                .doesNotContain("ORT_");
        CliTest.Result fp8 = runOnnx(rewritten("fp8", null, QdqPass.Mode.FP8));
        assertThat(fp8.err()).contains("fp8.onnx has fp8 tensors").contains("qdq:mode=int8").doesNotContain("ORT_");
        CliTest.Result halfInt8 = runOnnx(rewritten("fp16-int8", "fp16", QdqPass.Mode.INT8));
        assertThat(halfInt8.err()).contains("int8 Q/DQ with half-precision scales").contains("fp32+int8").doesNotContain("ORT_");
        assertThat(tmp.resolve("out")).doesNotExist();

        CliTest.Result fp32Int8 = runOnnx(rewritten("fp32-int8", null, QdqPass.Mode.INT8));
        assertThat(fp32Int8.code()).as(fp32Int8.err()).isZero();
    }

    @Test
    void runOnnxReportsAMalformedOrInvalidModelInSdrtsWords() throws Exception {
        Path malformed = tmp.resolve("bad.onnx");
        Files.write(malformed, new byte[] {0x0a, (byte) 0xff, (byte) 0xff, 0x01});
        CliTest.Result bad = runOnnx(malformed);
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.err()).contains("malformed ONNX file").contains("bad.onnx").doesNotContain("ORT_");

        Graph graph = new Graph("one-input-add");
        graph.addOutput(graph.op("Add", "add", graph.addInput("x", DataType.FLOAT, Shape.of(2))));
        Path invalid = tmp.resolve("invalid.onnx");
        new OnnxModel(graph, 17).save(invalid);
        CliTest.Result checked = sdrt("run-onnx", invalid.toString(), "--input", "x=" + UNET.folder().resolve("in_timestep.npy"),
                "--output-dir", tmp.resolve("out").toString());
        assertThat(checked.code()).isEqualTo(1);
        assertThat(checked.err()).contains("ONNX checker rejected").contains("invalid.onnx").doesNotContain("ORT_");
    }

    @Test
    void profileRefusesABf16ModelBeforeItsSession() throws Exception {
        CliTest.Result r = sdrt("profile", rewritten("bf16", "bf16", null).toString(), "--runs", "1", "--warmup", "0");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("computes in bfloat16").doesNotContain("ORT_");
    }

    @Test
    void generateRefusesABf16PipelineOnTheCpu() {
        Path bf16 = CliTest.exportRandomPipeline(tmp, "tiny", "--precision", "bf16");
        CliTest.Result r = sdrt("generate", "--model", bf16.toString(), "--prompt", "x", "--steps", "1",
                "--out", tmp.resolve("bf16.png").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("text_encoder.onnx computes in bfloat16").doesNotContain("ORT_").doesNotContain("loading");
    }
}
