package dev.sdrt.cli.bench;

import dev.sdrt.cli.OrtCpuCheck;
import dev.sdrt.cli.bench.BenchSettings.Size;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The backends that run on this machine's CPU with ONNX Runtime: the host loop ({@code cpu}) or the
 * device loop on a {@link CpuLoopDevice} ({@code cpu-loop}). Either takes any size and batch, so one
 * pipeline serves every cell of a variant.
 */
final class HostBenchBackend implements BenchBackend {
    private final int threads;
    private final boolean deviceLoop;
    private final boolean replay;

    HostBenchBackend(int threads, boolean deviceLoop, boolean replay) {
        if (replay && !deviceLoop) {
            throw new IllegalArgumentException("replay needs the device loop");
        }
        this.threads = threads;
        this.deviceLoop = deviceLoop;
        this.replay = replay;
    }

    @Override
    public String id() {
        return deviceLoop ? "cpu-loop" : "cpu";
    }

    @Override
    public Map<String, String> environment() {
        return Map.of("backend", deviceLoop
                ? "device loop on ONNX Runtime (CPU execution provider)" + (replay ? ", launches replayed" : "")
                : "ONNX Runtime (CPU execution provider)");
    }

    @Override
    public Pipelines open(Path folder) throws IOException {
        OrtCpuCheck.requirePipelineRunnable(folder, PipelineSpec.read(folder), true);
        if (!deviceLoop) {
            return new Single(Pipeline.open(folder, threads), null);
        }
        CpuLoopDevice device = new CpuLoopDevice(threads);
        try {
            return new Single(Pipeline.openOnDevice(folder, threads, Pipeline.DEFAULT_MAX_BATCH_IMAGES, device, replay), device);
        } catch (IOException | RuntimeException e) {
            device.close();
            throw e;
        }
    }

    /** One pipeline for every cell, and the device it runs on (null for the host loop), closed after it. */
    private record Single(Pipeline pipeline, CpuLoopDevice device) implements Pipelines {
        @Override
        public Pipeline forCell(Size size, int images, double guidance) {
            return pipeline;
        }

        @Override
        public Long deviceMemoryBytes() {
            return null;
        }

        @Override
        public void close() {
            try {
                pipeline.close();
            } finally {
                if (device != null) {
                    device.close();
                }
            }
        }
    }
}
