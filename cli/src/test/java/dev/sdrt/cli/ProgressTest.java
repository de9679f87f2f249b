package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Progress where stderr is not a terminal (a log, a pipe, CI): plain lines, no escape codes, no carriage returns. */
class ProgressTest {
    @TempDir
    Path tmp;

    @Test
    void offATerminalProgressIsALineAtEveryTenth() {
        StringWriter text = new StringWriter();
        try (Progress progress = Progress.start(new PrintWriter(text), "writing", 200, "MiB", 500)) {
            for (int i = 1; i <= 200; i++) {
                progress.stepTo(i);
            }
            progress.println("done writing");
        }
        assertThat(text.toString()).doesNotContain("\r").doesNotContain("\u001b")
                .contains("writing: 20/200 MiB (10%)").contains("writing: 200/200 MiB (100%)").endsWith("done writing\n");
        assertThat(text.toString().lines()).hasSize(11);
    }

    @Test
    void generateAndExportWriteNoEscapeCodesOrCarriageReturnsWhenStderrIsNotATerminal() throws Exception {
        PrintStream original = System.err;
        ByteArrayOutputStream processErr = new ByteArrayOutputStream();
        CliTest.Result export;
        CliTest.Result generate;
        System.setErr(new PrintStream(processErr, true, StandardCharsets.UTF_8));
        try {
            Path model = tmp.resolve("tiny");
            export = sdrt("export-pipeline", "--arch", "tiny", "--random-weights", "--out", model.toString());
            generate = sdrt("generate", "--model", model.toString(), "--prompt", "x", "--steps", "3", "--out",
                    tmp.resolve("x.png").toString());
        } finally {
            System.setErr(original);
        }
        assertThat(export.code()).as(export.err()).isZero();
        assertThat(generate.code()).as(generate.err()).isZero();
        String stderr = export.err() + generate.err() + processErr.toString(StandardCharsets.UTF_8);
        assertThat(stderr).doesNotContain("\r").doesNotContain("\u001b");
        assertThat(generate.err()).containsPattern("loading unet \\([0-9.]+ MiB\\)… [0-9.]+ s\n")
                .contains("denoising: 3/3 steps (100%)");
        assertThat(export.out()).containsPattern("unet +UNet2DConditionModel +[0-9,]+ parameters -> unet.onnx \\([0-9.]+ MiB\\) in");
    }

    @Test
    void largeWeightsShowTheirWritingProgress() throws Exception {
        Graph graph = new Graph("weights");
        ByteBuffer bytes = ByteBuffer.allocate(80 << 20).order(ByteOrder.LITTLE_ENDIAN);
        Value weight = graph.addInitializer("w", TensorData.of(DataType.FLOAT, new long[] {20 << 20}, bytes));
        Value x = graph.addInput("x", DataType.FLOAT, Shape.of(20 << 20));
        graph.addOutput(graph.op("Add", "add", x, weight));
        StringWriter err = new StringWriter();
        ModelSaving.saveShowingProgress(new OnnxModel(graph, 17), tmp.resolve("big.onnx"), new PrintWriter(err));
        assertThat(err.toString()).contains("writing big.onnx: 80/80 MiB (100%)").doesNotContain("\r");
    }
}
