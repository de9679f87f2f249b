package dev.sdrt.enginebuilder;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.SaveOptions;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.io.IOException;
import java.nio.file.Path;

/** Small ONNX models with dynamic inputs, built in code (the fixtures are all static). */
final class TestModels {

    private TestModels() {}

    /**
     * A UNet-shaped signature with sdrt's symbolic dimension names: sample [batch, 4, height, width],
     * timestep [batch], encoder_hidden_states [batch, sequence, 32]; a 32×16 weight (2 KiB, so it can
     * go to external data) keeps the graph non-trivial.
     */
    static OnnxModel dynamicUnetLike(DataType weightType) {
        Graph g = new Graph("dynamic_unet_like");
        Value sample = g.addInput("sample", DataType.FLOAT, Shape.mixed("batch", 4L, "height", "width"));
        g.addInput("timestep", DataType.FLOAT, Shape.mixed("batch"));
        Value text = g.addInput("encoder_hidden_states", DataType.FLOAT, Shape.mixed("batch", "sequence", 32L));
        float[] weights = new float[32 * 16];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = (i % 7) * 0.01f;
        }
        Value w = g.addInitializer("proj.weight", TensorData.ofFloatsAs(weightType, new long[] {32, 16}, weights));
        Value projected = g.op("MatMul", "/proj/MatMul", text, w);
        g.rename(projected, "context");
        projected.setTypeAndShape(weightType, Shape.mixed("batch", "sequence", 16L));
        g.addOutput(projected);
        Value scale = g.addInitializer("scale", TensorData.ofFloats(new long[] {1}, 0.5f));
        Value out = g.op("Mul", "/out/Mul", sample, scale);
        g.rename(out, "out_sample");
        out.setTypeAndShape(DataType.FLOAT, Shape.mixed("batch", 4L, "height", "width"));
        g.addOutput(out);
        return new OnnxModel(g, 17);
    }

    static Path saveDynamicUnetLike(Path file, boolean externalData) throws IOException {
        dynamicUnetLike(DataType.FLOAT).save(file, SaveOptions.defaults().withExternalData(
                externalData ? SaveOptions.ExternalData.ALWAYS : SaveOptions.ExternalData.NEVER));
        return file;
    }
}
