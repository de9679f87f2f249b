package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.ort.TinyOnnx;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Writes a stand-in for the exporter's scheduler-step graph (which the runtime tests cannot make),
 * with its inputs and outputs for a guided batch of one image, so the loop runs on ONNX Runtime
 * with the tiny UNet and VAE fixtures. It is no scheduler, only additions that make every output
 * depend on the step's inputs, the noise row included:
 *
 * <pre>
 *   next_sample      = sample + noise
 *   denoised         = previous_denoised + sample
 *   next_model_input = model_output + next_sample   (broadcast over the guided pair)
 * </pre>
 *
 * The coefficient row is bound but unused.
 */
final class StandInStepGraph {

    private StandInStepGraph() {}

    /** Writes the graph for latents of {@code latentShape} ([1, c, h, w]) and a guided pair of model inputs. */
    static Path write(Path file, long... latentShape) throws IOException {
        Object[] latents = Arrays.stream(latentShape).boxed().toArray();
        Object[] pair = latents.clone();
        pair[0] = 2 * latentShape[0];
        TinyOnnx graph = new TinyOnnx()
                .node("Add", "next_sample", "sample", "noise")
                .node("Add", "denoised", "previous_denoised", "sample")
                .node("Add", "next_model_input", "model_output", "next_sample");
        for (String input : new String[] {"sample", "previous_denoised", "noise"}) {
            graph.input(input, TinyOnnx.FLOAT, latents);
        }
        return graph.input("model_output", TinyOnnx.FLOAT, pair)
                .input("coefficients", TinyOnnx.FLOAT, 9L)
                .output("next_sample", TinyOnnx.FLOAT, latents)
                .output("denoised", TinyOnnx.FLOAT, latents)
                .output("next_model_input", TinyOnnx.FLOAT, pair)
                .write(file);
    }
}
