package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.loop.DeviceTensor;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.loop.LoopModel;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One {@link LoopModel} on a {@link LoopDevice} as a {@link Denoiser} the host loop calls once per
 * step: each {@link #run} is one upload of the inputs, one launch and one download of every output.
 *
 * <p>So it waits for the device once per call, which generation avoids by keeping the whole loop on
 * the device ({@link dev.sdrt.runtime.loop.DenoisingLoop}). It is for callers that need each step's
 * outputs on the host anyway and are not timed: calibration reads its taps' maxima after every step,
 * and one synchronization per step costs it nothing that matters.
 *
 * <p>Device tensors are allocated for a call's shapes and reused while the shapes stay the same;
 * new shapes free the old tensors first. Outputs are sized by {@link LoopModel#outputShapes} where the model can tell (TensorRT
 * engines), otherwise from the declared output shapes, whose dynamic dimensions must be named after
 * input dimensions (as in sdrt's exports; ONNX Runtime keeps the names).
 *
 * <p>Closing frees its tensors and closes the model; the device stays the caller's. Not thread-safe.
 */
public final class LoopDeviceDenoiser implements Denoiser {
    private final LoopDevice device;
    private final LoopModel model;
    /** The input shapes the buffers below were allocated for; null before the first call. */
    private Map<String, long[]> boundShapes;
    private final Map<String, DeviceTensor> inputBuffers = new LinkedHashMap<>();
    private final Map<String, DeviceTensor> outputBuffers = new LinkedHashMap<>();

    public LoopDeviceDenoiser(LoopDevice device, LoopModel model) {
        this.device = device;
        this.model = model;
    }

    /** Loads {@code modelFile} on {@code device} (what the device loads: an ONNX file, or an engine on GPUs). */
    public static LoopDeviceDenoiser open(LoopDevice device, Path modelFile) throws IOException {
        return new LoopDeviceDenoiser(device, device.load(modelFile));
    }

    @Override
    public String name() {
        return model.name() + " on " + device;
    }

    @Override
    public Map<String, TensorSpec> inputs() {
        return model.inputs();
    }

    @Override
    public Map<String, Tensor> run(Map<String, Tensor> inputs) {
        Map<String, long[]> shapes = checkedShapes(inputs);
        if (!sameShapes(shapes, boundShapes)) {
            allocate(shapes);
        }
        List<DeviceTensor> targets = new ArrayList<>();
        List<Tensor> sources = new ArrayList<>();
        inputBuffers.forEach((input, buffer) -> {
            targets.add(buffer);
            sources.add(inputs.get(input));
        });
        device.upload(targets, sources);
        device.launch(model, inputBuffers, outputBuffers);
        List<Tensor> results = device.download(outputBuffers.values().toArray(DeviceTensor[]::new));
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        int i = 0;
        for (String output : outputBuffers.keySet()) {
            outputs.put(output, results.get(i++));
        }
        return outputs;
    }

    /** The shape of each feed, in the model's input order, after checking names, types and fixed dimensions. */
    private Map<String, long[]> checkedShapes(Map<String, Tensor> feeds) {
        for (String name : feeds.keySet()) {
            if (!model.inputs().containsKey(name)) {
                throw new IllegalArgumentException(model.name() + " has no input '" + name + "'; inputs: " + model.inputs().keySet());
            }
        }
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (TensorSpec spec : model.inputs().values()) {
            Tensor feed = feeds.get(spec.name());
            if (feed == null) {
                throw new IllegalArgumentException(model.name() + ": no tensor for input '" + spec.name() + "' ("
                        + spec.describe() + ")");
            }
            Optional<String> mismatch = spec.mismatch(feed);
            if (mismatch.isPresent()) {
                throw new IllegalArgumentException(model.name() + ": " + mismatch.get());
            }
            shapes.put(spec.name(), feed.shape());
        }
        return shapes;
    }

    private static boolean sameShapes(Map<String, long[]> a, Map<String, long[]> b) {
        if (b == null || !a.keySet().equals(b.keySet())) {
            return false;
        }
        return a.entrySet().stream().allMatch(e -> Arrays.equals(e.getValue(), b.get(e.getKey())));
    }

    private void allocate(Map<String, long[]> inputShapes) {
        Map<String, long[]> outputShapes = outputShapes(inputShapes);
        freeBuffers();
        inputShapes.forEach((name, shape) ->
                inputBuffers.put(name, device.allocate(name, model.inputs().get(name).dtype(), shape)));
        for (TensorSpec spec : model.outputs().values()) {
            outputBuffers.put(spec.name(), device.allocate(spec.name(), spec.dtype(), outputShapes.get(spec.name())));
        }
        boundShapes = inputShapes;
    }

    /** Every output's shape for these inputs: as the model infers it, else resolved by dimension names. */
    private Map<String, long[]> outputShapes(Map<String, long[]> inputShapes) {
        Optional<Map<String, long[]>> inferred = model.outputShapes(inputShapes);
        Map<String, Long> dims = new HashMap<>();
        inputShapes.forEach((name, shape) -> model.inputs().get(name).bindDimensions(shape, dims));
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (TensorSpec spec : model.outputs().values()) {
            long[] shape = inferred.map(m -> m.get(spec.name())).orElse(null);
            shapes.put(spec.name(), shape != null ? shape : resolve(spec, dims));
        }
        return shapes;
    }

    private long[] resolve(TensorSpec output, Map<String, Long> dims) {
        long[] shape = output.shapeWith(dims);
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == TensorSpec.DYNAMIC) {
                String dimension = output.dimensionName(d).isEmpty() ? "dimension " + d + " (unnamed)"
                        : "dimension " + d + " ('" + output.dimensionName(d) + "', which no input dimension is named)";
                throw new IllegalStateException(model.name() + ": cannot size output '" + output.name() + "' "
                        + output.describe() + " before running it: " + dimension + " is dynamic and " + device
                        + " cannot infer output shapes; give the graph's outputs fixed dimensions or dimensions"
                        + " named after its inputs' (as sdrt's exports do)");
            }
        }
        return shape;
    }

    @Override
    public void close() {
        freeBuffers();
        model.close();
    }

    private void freeBuffers() {
        inputBuffers.values().forEach(device::free);
        outputBuffers.values().forEach(device::free);
        inputBuffers.clear();
        outputBuffers.clear();
        boundShapes = null;
    }
}
