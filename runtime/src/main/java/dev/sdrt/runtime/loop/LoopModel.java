package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.tensor.TensorSpec;
import java.util.Map;

/** A model loaded on a {@link LoopDevice} (an ONNX Runtime session, a TensorRT engine), launched by name-bound tensors. */
public interface LoopModel extends AutoCloseable {

    String name();

    Map<String, TensorSpec> inputs();

    Map<String, TensorSpec> outputs();

    @Override
    void close();
}
