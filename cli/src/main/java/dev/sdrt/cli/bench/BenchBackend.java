package dev.sdrt.cli.bench;

import dev.sdrt.cli.bench.BenchSettings.Size;
import dev.sdrt.runtime.pipeline.Pipeline;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where {@code sdrt bench} runs a variant's pipeline: ONNX Runtime on the host ({@code cpu}), the
 * device loop on ONNX Runtime ({@code cpu-loop}: the GPU path's loop, checked on a CPU), or the
 * device loop on TensorRT engines ({@code tensorrt}, in the cli package beside the engine targets of
 * {@code sdrt build-pipeline}).
 */
public interface BenchBackend {

    /** The {@code --backend} value. */
    String id();

    /** What runs where, for the report's environment ("backend", and "gpu" / "tensorrt" where they apply). */
    Map<String, String> environment();

    /** Opens a variant's pipeline folder for timing. */
    Pipelines open(Path folder) throws IOException;

    /** A variant folder opened for timing. */
    interface Pipelines extends AutoCloseable {
        /**
         * The pipeline that runs a cell: one for every cell where the backend takes any shape; on
         * TensorRT the one on that cell's static engines (built or reused here).
         */
        Pipeline forCell(Size size, int images, double guidance) throws IOException;

        /**
         * Device memory the cell's pipeline added (engines, activations, loop buffers; an engine loaded
         * for an earlier cell is not loaded again); null without a device.
         */
        Long deviceMemoryBytes();

        @Override
        void close();
    }

    /** ONNX Runtime on the CPU, the host loop: the embedded default. */
    static BenchBackend onnxRuntime(int threads) {
        return new HostBenchBackend(threads, false, false);
    }

    /** The device loop (one upload, queued steps, one read-back; replayed when asked) run by ONNX Runtime on the CPU. */
    static BenchBackend cpuLoop(int threads, boolean replay) {
        return new HostBenchBackend(threads, true, replay);
    }
}
