package dev.sdrt.cli;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Checks a model before an ONNX Runtime CPU session is created from it. ONNX Runtime's own errors
 * name a kernel or a type rule of a node it made ("Could not find an implementation for MatMul(13)",
 * "Type 'tensor(float8e4m3fn)' ... of operator (MatMulIntegerToFloat) is invalid"), not the cause or
 * what to do; sdrt can read the model and say both first.
 */
public final class OrtCpuCheck {

    private static final String TENSORRT = "it runs on TensorRT ('sdrt build', or 'sdrt build-pipeline' and generate"
            + " --backend tensorrt)";

    private OrtCpuCheck() {
    }

    /**
     * Reads {@code file} with sdrt's loader (a missing file, a malformed one or missing external
     * data is named as such), refuses what the CPU provider cannot run, and runs the ONNX checker.
     */
    public static void requireRunnable(Path file) throws IOException {
        refuseUnsupported(file, OnnxModel.load(file));
        OnnxChecker.check(file);
    }

    /**
     * Refuses a pipeline folder with a model the CPU provider cannot run, among those that run on
     * ONNX Runtime: the text encoders and the VAE encoder always, the denoiser, the VAE decoder and
     * the DeepCache graphs when {@code denoisingOnCpu}.
     */
    public static void requirePipelineRunnable(Path folder, PipelineSpec spec, boolean denoisingOnCpu) throws IOException {
        List<String> files = new ArrayList<>();
        files.add(spec.textEncoder);
        files.add(spec.textEncoder2);
        files.add(spec.vaeEncoder);
        if (denoisingOnCpu) {
            files.addAll(List.of(spec.denoiser(), spec.vaeDecoder));
            files.add(spec.deepCacheFull);
            files.add(spec.deepCacheShallow);
        }
        for (String name : files) {
            if (name != null) {
                Path file = folder.resolve(name);
                refuseUnsupported(file, OnnxModel.load(file));
            }
        }
    }

    private static void refuseUnsupported(Path file, OnnxModel model) {
        Optional<String> why = whyNot(model);
        if (why.isPresent()) {
            throw new IllegalArgumentException(file + " " + why.get());
        }
    }

    /**
     * Why ONNX Runtime's CPU provider cannot run {@code model}, and what to do instead (a phrase that
     * follows the model's name); empty when sdrt knows of no reason.
     */
    static Optional<String> whyNot(OnnxModel model) {
        Graph graph = model.graph();
        Set<DataType> types = typesIn(graph);
        if (types.contains(DataType.FLOAT8E4M3FN) || types.contains(DataType.FLOAT8E5M2)) {
            return Optional.of("has fp8 tensors (fp8 Q/DQ), which ONNX Runtime's CPU provider rejects as an invalid model"
                    + " (it fuses Q/DQ into a quantized MatMul that takes no fp8): on the CPU use int8 Q/DQ on an fp32 graph"
                    + " (qdq:mode=int8) or none; fp8 " + TENSORRT);
        }
        if (types.contains(DataType.BFLOAT16)) {
            return Optional.of("computes in bfloat16, which ONNX Runtime's CPU provider cannot run (it has no bf16 MatMul or"
                    + " Conv kernels): on the CPU use an fp32 or fp16 model (export --precision fp32 or fp16, or the fp16"
                    + " pass); bf16 " + TENSORRT);
        }
        for (Node n : graph.nodes()) {
            if (n.is("DequantizeLinear") && n.inputCount() > 1 && typeOf(n.input(1)) == DataType.FLOAT16) {
                return Optional.of("has int8 Q/DQ with half-precision scales (qdq after fp16), which ONNX Runtime's CPU"
                        + " provider cannot run (it fuses them into an int8 MatMul that has only a float32 kernel): on the"
                        + " CPU run qdq on the fp32 graph (fp32+int8); the fp16 form " + TENSORRT);
            }
        }
        return Optional.empty();
    }

    /** Every element type the graph states: of its values, its initializers, Constant nodes and Cast targets. */
    private static Set<DataType> typesIn(Graph graph) {
        Set<DataType> types = EnumSet.noneOf(DataType.class);
        for (Value v : graph.values().values()) {
            DataType t = typeOf(v);
            if (t != null) {
                types.add(t);
            }
        }
        for (Node n : graph.nodes()) {
            if (n.is("Cast") && n.hasAttr("to")) {
                long to = n.attrInt("to", 0);
                Arrays.stream(DataType.values()).filter(t -> t.onnxCode() == to).forEach(types::add);
            } else if (n.is("Constant") && n.hasAttr("value")) {
                types.add(n.attrTensor("value").type());
            }
        }
        return types;
    }

    private static DataType typeOf(Value v) {
        if (v == null) {
            return null;
        }
        return v.isConstant() ? v.constant().type() : v.type();
    }
}
