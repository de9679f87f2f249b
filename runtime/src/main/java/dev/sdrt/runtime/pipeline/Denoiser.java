package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The model a pipeline calls once per step: the folder's UNet or transformer on ONNX Runtime, unless
 * the caller opens the pipeline with its own (calibration runs a copy with activation taps, so it
 * drives the very same loop as generation).
 */
public interface Denoiser extends AutoCloseable {

    /** What to call it in messages (the model file). */
    String name();

    /** The inputs it takes, with their types: the pipeline casts each feed to the declared type. */
    Map<String, TensorSpec> inputs();

    /** One step: named inputs in, named outputs out (the family's output name among them). */
    Map<String, Tensor> run(Map<String, Tensor> inputs);

    @Override
    void close();

    /** Opens the denoiser of a pipeline folder from its model file. */
    @FunctionalInterface
    interface Opener {
        Denoiser open(Path modelFile) throws IOException;
    }

    /** An ONNX Runtime session as a denoiser. */
    static Denoiser of(OrtRunner runner) {
        return new Denoiser() {
            @Override
            public String name() {
                return runner.model().toString();
            }

            @Override
            public Map<String, TensorSpec> inputs() {
                return runner.inputs();
            }

            @Override
            public Map<String, Tensor> run(Map<String, Tensor> inputs) {
                return runner.run(inputs);
            }

            @Override
            public void close() {
                runner.close();
            }
        };
    }
}
