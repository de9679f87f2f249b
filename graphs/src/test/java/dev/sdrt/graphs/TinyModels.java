package dev.sdrt.graphs;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;

/** Small graphs built in code for the IR and I/O tests. */
final class TinyModels {
    private TinyModels() {
    }

    /** y = relu(x @ w + b) with x [2,3], w [3,4] (weights 0.1*i), b [4]. */
    static OnnxModel linearRelu() {
        Graph g = new Graph("linear_relu");
        Value x = g.addInput("x", DataType.FLOAT, Shape.of(2, 3));
        float[] w = new float[12];
        for (int i = 0; i < w.length; i++) {
            w[i] = 0.1f * (i - 6);
        }
        Value wv = g.addInitializer("w", TensorData.ofFloats(new long[] {3, 4}, w));
        Value bv = g.addInitializer("b", TensorData.ofFloats(new long[] {4}, 0.5f, -0.5f, 0.25f, 0f));
        Value mm = g.op("MatMul", "/linear/MatMul", x, wv);
        Value add = g.op("Add", "/linear/Add", mm, bv);
        Value y = g.op("Relu", "/act/Relu", add);
        g.rename(y, "y");
        y.setTypeAndShape(DataType.FLOAT, Shape.of(2, 4));
        g.addOutput(y);
        return new OnnxModel(g, 17);
    }

    static float[] linearReluReference(float[] x) {
        OnnxModel m = linearRelu();
        float[] w = m.graph().value("w").constant().toFloats();
        float[] b = m.graph().value("b").constant().toFloats();
        float[] y = new float[8];
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 4; c++) {
                float s = b[c];
                for (int k = 0; k < 3; k++) {
                    s += x[r * 3 + k] * w[k * 4 + c];
                }
                y[r * 4 + c] = Math.max(0, s);
            }
        }
        return y;
    }
}
