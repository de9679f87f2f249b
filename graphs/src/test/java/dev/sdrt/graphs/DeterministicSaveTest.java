package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.runtime.Fixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The same model saves to the same bytes: in fresh objects, after passes, and in fresh JVMs. */
class DeterministicSaveTest {
    private static final SaveOptions EXTERNAL = SaveOptions.defaults().withExternalData(SaveOptions.ExternalData.ALWAYS);

    @TempDir
    Path tmp;

    /**
     * A conv block built the way the exporter builds graphs: attributes and metadata from
     * {@code Map.of}, whose iteration order is fixed within one JVM and changes between runs.
     */
    static OnnxModel convBlock() {
        Graph g = new Graph("conv_block");
        Value x = g.addInput("x", DataType.FLOAT, Shape.mixed("batch", 4L, 8L, 8L));
        float[] w = new float[8 * 4 * 3 * 3];
        for (int i = 0; i < w.length; i++) {
            w[i] = (i % 7 - 3) / 8f;
        }
        Value weight = g.addInitializer("conv.weight", TensorData.ofFloats(new long[] {8, 4, 3, 3}, w));
        Value bias = g.addInitializer("conv.bias", TensorData.ofFloats(new long[] {8}, new float[8]));
        Value conv = g.op("Conv", "/conv/Conv", List.of(x, weight, bias), Map.of("kernel_shape", new long[] {3, 3},
                "pads", new long[] {1, 1, 1, 1}, "strides", new long[] {1, 1}, "dilations", new long[] {1, 1}, "group", 1L,
                "auto_pad", "NOTSET"));
        Value norm = g.op("LeakyRelu", "/act/LeakyRelu", List.of(conv), Map.of("alpha", 0.1f));
        Value pooled = g.op("ReduceMean", "/pool/ReduceMean", List.of(norm), Map.of("axes", new long[] {2, 3},
                "keepdims", 1L, "noop_with_empty_axes", 0L));
        pooled.setTypeAndShape(DataType.FLOAT, Shape.mixed("batch", 8L, 1L, 1L));
        g.rename(pooled, "y");
        g.addOutput(pooled);
        OnnxModel m = new OnnxModel(g, 17);
        m.opsetImports().putAll(Map.of("com.microsoft", 1L, "ai.onnx.ml", 3L, "com.example", 2L));
        m.metadata().putAll(Map.of("sdrt.component", "unet", "sdrt.precision", "fp32", "sdrt.seed", "3",
                "sdrt.arch", "sd15", "sdrt.source", "random"));
        return m;
    }

    /** SHA-256 of the model file and every data file it points to. */
    static String contentHash(Path model) throws IOException {
        MessageDigest digest = sha256();
        digest.update(Files.readAllBytes(model));
        for (Path data : OnnxModel.externalDataFiles(model)) {
            digest.update(data.getFileName().toString().getBytes(StandardCharsets.UTF_8));
            digest.update(Files.readAllBytes(data));
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void attributeAndMetadataOrderDoNotChangeTheBytes() throws IOException {
        OnnxModel forward = TinyModels.linearRelu();
        OnnxModel backward = TinyModels.linearRelu();
        Node a = forward.graph().nodes().get(2);
        Node b = backward.graph().nodes().get(2);
        a.setAttr("alpha", 1f).setAttr("beta", 2L).setAttr("gamma", "g");
        b.setAttr("gamma", "g").setAttr("beta", 2L).setAttr("alpha", 1f);
        forward.metadata().put("one", "1");
        forward.metadata().put("two", "2");
        backward.metadata().put("two", "2");
        backward.metadata().put("one", "1");
        assertThat(backward.toInlineProto().toByteArray()).isEqualTo(forward.toInlineProto().toByteArray());
    }

    @Test
    void freshObjectsSaveToTheSameBytes() throws IOException {
        List<String> hashes = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Path file = tmp.resolve("run" + i + "/model.onnx");
            convBlock().save(file, EXTERNAL);
            hashes.add(contentHash(file));
        }
        assertThat(hashes).containsOnly(hashes.get(0));
    }

    /** The passes decide in identity-hash order in places; a rewritten model must not show it. */
    @Test
    void rewrittenFixtureSavesToTheSameBytes() throws IOException {
        List<String> hashes = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            OnnxModel m = OnnxModel.load(Fixtures.model("tiny_sd_unet").resolve("model.onnx"));
            PassPipeline.parse("cleanup,fp16").run(m);
            Path file = tmp.resolve("fp16_" + i + "/model.onnx");
            m.save(file, EXTERNAL);
            hashes.add(contentHash(file));
        }
        assertThat(hashes).containsOnly(hashes.get(0));
    }

    /** {@code Map.of} iterates in an order that changes per JVM, so only fresh JVMs show that kind of drift. */
    @Test
    void freshJvmsSaveToTheSameBytes() throws Exception {
        Path file = tmp.resolve("here/model.onnx");
        convBlock().save(file, EXTERNAL);
        String here = contentHash(file);
        List<Process> children = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            children.add(new ProcessBuilder(java(), "-cp", System.getProperty("java.class.path"),
                    SaveAndHash.class.getName(), tmp.resolve("child" + i + "/model.onnx").toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start());
        }
        for (Process child : children) {
            assertThat(child.waitFor(60, TimeUnit.SECONDS)).as("child finished").isTrue();
            String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            assertThat(child.exitValue()).as(output).isZero();
            assertThat(output).isEqualTo(here);
        }
    }

    static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** Child JVM: saves {@link #convBlock()} to the path given and prints its content hash. */
    public static final class SaveAndHash {
        public static void main(String[] args) throws IOException {
            Path file = Path.of(args[0]);
            convBlock().save(file, EXTERNAL);
            System.out.println(contentHash(file));
        }
    }
}
