package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.FixtureCase;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.tensor.Tensors;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Runs rewritten models on ONNX Runtime CPU and compares them with the unrewritten ones. */
final class PassTesting {
    /** The exact passes' bound: max|rewritten − original| / max|original| over every output. */
    static final double EXACT = 1e-5;

    static final List<String> FIXTURES = List.of("tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text",
            "tiny_sd3_transformer");

    private static final Map<String, Map<String, Tensor>> ORIGINAL_OUTPUTS = new ConcurrentHashMap<>();

    private PassTesting() {
    }

    static OnnxModel load(String fixture) {
        try {
            return OnnxModel.load(FixtureCase.named(fixture).onnx());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The unrewritten fixture model's outputs on its inputs (computed once per fixture). */
    static Map<String, Tensor> originalOutputs(String fixture) {
        return ORIGINAL_OUTPUTS.computeIfAbsent(fixture, f -> {
            FixtureCase c = FixtureCase.named(f);
            try (OrtRunner runner = OrtRunner.builder(c.onnx()).build()) {
                return runner.run(c.inputs());
            }
        });
    }

    /** Saves {@code model} under {@code dir} and runs it on the fixture's inputs, cast to the model's input types. */
    static Map<String, Tensor> run(OnnxModel model, String fixture, Path dir) {
        FixtureCase c = FixtureCase.named(fixture);
        Path file = save(model, dir);
        try (OrtRunner runner = OrtRunner.builder(file).build()) {
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            for (TensorSpec spec : runner.inputs().values()) {
                Tensor t = c.inputs().get(spec.name());
                feeds.put(spec.name(), t.dtype() == spec.dtype() ? t : t.castTo(spec.dtype()));
            }
            return runner.run(feeds);
        }
    }

    static Path save(OnnxModel model, Path dir) {
        try {
            Files.createDirectories(dir);
            Path file = Files.createTempFile(dir, "model", ".onnx");
            model.save(file);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The largest max-relative difference over the outputs {@code reference} has. */
    static double maxRelDiff(Map<String, Tensor> actual, Map<String, Tensor> reference) {
        double worst = 0;
        for (var e : reference.entrySet()) {
            worst = Math.max(worst, Tensors.maxRelDiff(actual.get(e.getKey()), e.getValue()));
        }
        return worst;
    }

    /**
     * Makes a half-precision graph runnable on ONNX Runtime CPU, which has few bfloat16 kernels:
     * every node that reads or writes {@code half} (Casts aside) computes in float32 between a
     * Cast up of its inputs and a Cast down of its outputs. Values are still rounded to {@code
     * half} wherever the graph stores them, as ONNX Runtime itself does for fp16 on CPU.
     */
    static void computeInFloat(OnnxModel model, DataType half) {
        Graph g = model.graph();
        for (Node n : List.copyOf(g.nodes())) {
            boolean touchesHalf = n.inputs().stream().anyMatch(v -> v != null && v.type() == half)
                    || n.outputs().stream().anyMatch(v -> v.type() == half);
            if (n.is("Cast") || !touchesHalf) {
                continue;
            }
            List<Value> inputs = new ArrayList<>();
            for (Value v : n.inputs()) {
                inputs.add(v != null && v.type() == half ? cast(g, v, DataType.FLOAT) : v);
            }
            List<Value> outputs = new ArrayList<>();
            List<Value> stored = new ArrayList<>();
            for (Value out : n.outputs()) {
                boolean narrow = out.type() == half;
                Value wide = narrow ? g.newValue(out.name() + "_f32").setTypeAndShape(DataType.FLOAT, out.shape()) : out;
                outputs.add(wide);
                stored.add(narrow ? out : null);
            }
            g.removeNode(n);
            Node wideNode = g.addNode(n.opType(), n.domain(), n.name(), inputs, outputs);
            n.attributes().values().forEach(wideNode::setAttr);
            for (int i = 0; i < stored.size(); i++) {
                if (stored.get(i) != null) {
                    g.addNode("Cast", "", n.name() + "_store", List.of(outputs.get(i)), List.of(stored.get(i)))
                            .setAttr("to", (long) half.onnxCode());
                }
            }
        }
        g.toposort();
    }

    private static Value cast(Graph g, Value v, DataType to) {
        Value out = g.op("Cast", v.name() + "_up", List.of(v), Map.of("to", (long) to.onnxCode()));
        return out.setTypeAndShape(to, v.shape());
    }
}
