package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.tensor.TensorSpec;
import java.util.Map;
import java.util.Optional;

/** A model loaded on a {@link LoopDevice} (an ONNX Runtime session, a TensorRT engine), launched by name-bound tensors. */
public interface LoopModel extends AutoCloseable {

    String name();

    Map<String, TensorSpec> inputs();

    Map<String, TensorSpec> outputs();

    /**
     * The shape of every output for the given input shapes, where the model can tell without running
     * (a TensorRT engine infers them from its network), else empty. Used to size buffers for outputs
     * whose dynamic dimensions carry no names to match against the inputs' (engines keep no names).
     */
    default Optional<Map<String, long[]>> outputShapes(Map<String, long[]> inputShapes) {
        return Optional.empty();
    }

    @Override
    void close();
}
