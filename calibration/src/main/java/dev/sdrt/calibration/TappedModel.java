package dev.sdrt.calibration;

import dev.sdrt.calibration.CalibrationGraph.Tap;
import dev.sdrt.calibration.CalibrationGraph.TapKind;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.pipeline.Denoiser;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A {@link CalibrationGraph} loaded on a backend: ONNX Runtime (CPU) by default, or whatever a
 * {@link Denoiser.Opener} makes of the saved graph (a loop device, a TensorRT engine built from it).
 * Each {@link #run} returns the model's own outputs and an {@link Observation} of every tap. The
 * tapped model is written to a temporary folder that {@link #close()} deletes.
 */
public final class TappedModel implements AutoCloseable {

    /**
     * What one run saw.
     *
     * @param amax per tapped tensor: max|x| over the whole tensor
     * @param channelMax per SmoothQuant tensor: max|x| per input channel (last axis)
     */
    public record Observation(Map<String, Float> amax, Map<String, float[]> channelMax) {
    }

    /** The model's outputs (without the taps) and the observation. */
    public record Result(Map<String, Tensor> outputs, Observation observation) {
    }

    private final CalibrationGraph graph;
    private final Path folder;
    private final Denoiser model;

    private TappedModel(CalibrationGraph graph, Path folder, Denoiser model) {
        this.graph = graph;
        this.folder = folder;
        this.model = model;
    }

    /**
     * Saves the tapped model to a new temporary folder and opens it in ONNX Runtime with {@code
     * threads} intra-op threads (0: ONNX Runtime's default of one per core).
     */
    public static TappedModel open(CalibrationGraph graph, int threads) throws IOException {
        return open(graph, onnxRuntime(threads));
    }

    /** Opens a model file in ONNX Runtime (CPU) with {@code threads} intra-op threads (0: one per core). */
    static Denoiser.Opener onnxRuntime(int threads) {
        return file -> {
            OrtRunner.Builder b = OrtRunner.builder(file);
            if (threads > 0) {
                b.intraOpThreads(threads);
            }
            return Denoiser.of(b.build());
        };
    }

    /**
     * Saves the tapped model to a new temporary folder (as {@code tapped.onnx}, with its external
     * data beside it) and opens that file with {@code opener}, which must return every graph output.
     */
    public static TappedModel open(CalibrationGraph graph, Denoiser.Opener opener) throws IOException {
        Path folder = Files.createTempDirectory("sdrt-calibration-");
        try {
            Path file = folder.resolve("tapped.onnx");
            graph.model().save(file);
            return new TappedModel(graph, folder, opener.open(file));
        } catch (IOException | RuntimeException e) {
            deleteTree(folder);
            throw e;
        }
    }

    public CalibrationGraph graph() {
        return graph;
    }

    /** The model's inputs, as its backend reports them. */
    public Map<String, TensorSpec> inputs() {
        return model.inputs();
    }

    public Result run(Map<String, Tensor> feeds) {
        Map<String, Tensor> all = model.run(feeds);
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        for (String name : graph.modelOutputs()) {
            outputs.put(name, output(all, name));
        }
        Map<String, Float> amax = new LinkedHashMap<>();
        Map<String, float[]> channelMax = new LinkedHashMap<>();
        for (Tap tap : graph.taps()) {
            float[] values = output(all, tap.output()).toFloatArray();
            if (tap.kind() == TapKind.AMAX) {
                amax.put(tap.tensor(), values[0]);
            } else {
                channelMax.put(tap.tensor(), values);
            }
        }
        return new Result(outputs, new Observation(amax, channelMax));
    }

    private Tensor output(Map<String, Tensor> all, String name) {
        Tensor t = all.get(name);
        if (t == null) {
            throw new IllegalStateException(model.name() + " returned no output '" + name + "'; the tapped model needs every"
                    + " graph output back");
        }
        return t;
    }

    @Override
    public void close() {
        try {
            model.close();
        } finally {
            deleteTree(folder);
        }
    }

    private static void deleteTree(Path folder) {
        try (Stream<Path> files = Files.walk(folder)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not delete the temporary folder " + folder, e);
        }
    }
}
