package dev.sdrt.exporter;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.OpEmitter;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.util.List;
import java.util.Map;

/**
 * The per-step update of every sdrt scheduler, with classifier-free guidance, as a small ONNX graph
 * that runs on the device next to the denoiser (its own engine, or ONNX Runtime), so the loop needs
 * no host logic between steps. Per-step numbers come in as one row of the host-made coefficient
 * table (runtime's {@code SchedulePlan.coefficientTable}):
 *
 * <pre>
 *   coefficients = [g, a, b, c, d, p, q, s', t']
 *   out        = guided ? uncond + g·(cond − uncond) : model_output     (model_output = [uncond; cond] on the batch axis)
 *   denoised   = p·x + q·out
 *   next       = a·x + b·out + c·previous_denoised + d·noise
 *   next_input = s'·next + t', repeated for both guidance halves
 * </pre>
 *
 * Inputs: {@code sample}, {@code model_output}, {@code previous_denoised}, {@code noise} (float32,
 * NCHW latents, dynamic batch and size) and {@code coefficients} [9]. Outputs: {@code next_sample},
 * {@code denoised}, {@code next_model_input}.
 */
public final class SchedulerStepGraph {
    /** Column order of the coefficient row; must match runtime's SchedulePlan.COEFFICIENT_COLUMNS. */
    public static final List<String> COLUMNS = List.of(
            "guidance_scale", "sample", "output", "previous_denoised", "noise", "denoised_sample", "denoised_output",
            "next_input_scale", "next_input_shift");

    private SchedulerStepGraph() {
    }

    private static final long OPSET = 17;

    public static OnnxModel build(boolean guided) {
        Graph graph = new Graph(guided ? "scheduler_step_guided" : "scheduler_step");
        OpEmitter g = new OpEmitter(graph, OPSET);
        Shape latent = Shape.mixed("batch", "channels", "height", "width");
        Value x = graph.addInput("sample", DataType.FLOAT, latent);
        Value modelOutput = graph.addInput("model_output", DataType.FLOAT,
                Shape.mixed(guided ? "guided_batch" : "batch", "channels", "height", "width"));
        Value previous = graph.addInput("previous_denoised", DataType.FLOAT, latent);
        Value noise = graph.addInput("noise", DataType.FLOAT, latent);
        Value coefficients = graph.addInput("coefficients", DataType.FLOAT, Shape.of(COLUMNS.size()));

        Value out = modelOutput;
        if (guided) {
            Value batch = g.op("Slice", "/guidance/batch", g.op("Shape", "/guidance/Shape", x),
                    graph.constant("zero", TensorData.vector(0)), graph.constant("one", TensorData.vector(1)));
            Value uncond = g.op("Slice", "/guidance/uncond", modelOutput, graph.constant("zero", TensorData.vector(0)), batch,
                    graph.constant("axis0", TensorData.vector(0)));
            Value cond = g.op("Slice", "/guidance/cond", modelOutput, batch,
                    graph.constant("end", TensorData.vector(Long.MAX_VALUE)), graph.constant("axis0", TensorData.vector(0)));
            Value delta = g.op("Sub", "/guidance/Sub", cond, uncond);
            out = g.op("Add", "/guidance/Add", uncond, g.op("Mul", "/guidance/Mul", coefficient(g, coefficients, 0), delta));
        }
        Value denoised = g.op("Add", "/denoised/Add",
                g.op("Mul", "/denoised/p", coefficient(g, coefficients, 5), x),
                g.op("Mul", "/denoised/q", coefficient(g, coefficients, 6), out));
        Value next = g.op("Add", "/next/Add_0", g.op("Mul", "/next/a", coefficient(g, coefficients, 1), x),
                g.op("Mul", "/next/b", coefficient(g, coefficients, 2), out));
        next = g.op("Add", "/next/Add_1", next, g.op("Mul", "/next/c", coefficient(g, coefficients, 3), previous));
        next = g.op("Add", "/next/Add_2", next, g.op("Mul", "/next/d", coefficient(g, coefficients, 4), noise));
        Value scaled = g.op("Add", "/next_input/shift",
                g.op("Mul", "/next_input/scale", coefficient(g, coefficients, 7), next), coefficient(g, coefficients, 8));
        Value nextInput = guided ? g.op("Concat", "/next_input/Concat", List.of(scaled, scaled), Map.of("axis", 0L)) : scaled;

        output(g, next, "next_sample", latent);
        output(g, denoised, "denoised", latent);
        output(g, nextInput, "next_model_input", modelOutput.shape());
        OnnxModel model = new OnnxModel(graph, OPSET);
        model.setProducer("sdrt", "0.1");
        return model;
    }

    private static Value coefficient(OpEmitter g, Value coefficients, int column) {
        return g.op("Gather", "/coefficients/" + COLUMNS.get(column), List.of(coefficients,
                g.graph().constant("column_" + column, TensorData.scalar((long) column))), Map.of("axis", 0L));
    }

    private static void output(OpEmitter g, Value v, String name, Shape shape) {
        g.output(name, v, DataType.FLOAT, shape, "/" + name + "/Identity");
    }
}
