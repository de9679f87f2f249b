package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A loop device that passes every call to another one, for tests that count or change a few calls
 * (override those) while the rest run on the CPU loop device.
 */
public class ForwardingLoopDevice implements LoopDevice {
    protected final LoopDevice delegate;

    public ForwardingLoopDevice(LoopDevice delegate) {
        this.delegate = delegate;
    }

    @Override
    public LoopModel load(Path model) throws IOException {
        return delegate.load(model);
    }

    @Override
    public DeviceTensor allocate(String label, DType dtype, long... shape) {
        return delegate.allocate(label, dtype, shape);
    }

    @Override
    public void free(DeviceTensor tensor) {
        delegate.free(tensor);
    }

    @Override
    public void upload(List<DeviceTensor> targets, List<Tensor> sources) {
        delegate.upload(targets, sources);
    }

    @Override
    public void launch(LoopModel model, Map<String, DeviceTensor> inputs, Map<String, DeviceTensor> outputs) {
        delegate.launch(model, inputs, outputs);
    }

    @Override
    public Replay capture(Runnable work) {
        return delegate.capture(work);
    }

    @Override
    public List<Tensor> download(DeviceTensor... sources) {
        return delegate.download(sources);
    }

    @Override
    public long synchronizations() {
        return delegate.synchronizations();
    }

    @Override
    public void close() {
        delegate.close();
    }

    @Override
    public String toString() {
        return delegate.toString();
    }
}
