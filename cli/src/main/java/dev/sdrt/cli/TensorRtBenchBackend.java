package dev.sdrt.cli;

import dev.sdrt.cli.bench.BenchBackend;
import dev.sdrt.cli.bench.BenchSettings.Size;
import dev.sdrt.enginebuilder.BuildProgress;
import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.pipeline.PipelineEngines;
import dev.sdrt.runtime.loop.TrtLoopDevice;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.trt.Cuda;
import dev.sdrt.runtime.trt.TensorRt;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code sdrt bench --backend tensorrt}: each cell runs the device loop on static TensorRT engines made
 * for exactly its size and batch (the engines {@code sdrt build-pipeline} would build for it: denoiser,
 * VAE decoder, scheduler-step graphs, DeepCache graphs). Engines live in one store, {@code
 * OUT/engines/}, named by their cache key, so a component that several variants share (the VAE decoder,
 * the step graphs) is built once, and a second bench run loads every engine at once.
 */
final class TensorRtBenchBackend implements BenchBackend {
    private final Path store;
    private final int threads;
    private final int optLevel;
    private final boolean replay;
    private final PrintWriter log;
    private final Supplier<EngineCache> engines;
    private final BuildProgress progress;
    private EngineCache cache;

    /**
     * @param store    where engines and the shared timing cache go
     * @param replay   capture each cell's launches once and replay them (CUDA graphs)
     * @param engines  the engine cache of this machine, made on first use
     * @param progress what a build reports as it goes (builds of full-size denoisers take minutes)
     */
    TensorRtBenchBackend(Path store, int threads, int optLevel, boolean replay, PrintWriter log, Supplier<EngineCache> engines,
            BuildProgress progress) {
        this.store = store;
        this.threads = threads;
        this.optLevel = optLevel;
        this.replay = replay;
        this.log = log;
        this.engines = engines;
        this.progress = progress;
    }

    /** Refuses unguided requests: the engines are static at the guided batch (the denoiser runs 2 × batch). */
    static void requireGuided(double guidance) {
        if (!(guidance > 1)) {
            throw new IllegalArgumentException("--backend tensorrt builds static engines for guided requests (the denoiser"
                    + " runs 2 × batch); use --guidance above 1");
        }
    }

    @Override
    public String id() {
        return "tensorrt";
    }

    @Override
    public Map<String, String> environment() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("backend", "TensorRT " + TensorRt.version() + ", device loop" + (replay ? " replayed as CUDA graphs" : ", launches queued")
                + ", static engines per size and batch (opt level " + optLevel + "); text encoders on ONNX Runtime (CPU)");
        env.put("gpu", Cuda.deviceName() + " (compute capability " + Cuda.computeCapability() + ", "
                + Cuda.memoryInfo()[1] / (1024 * 1024) + " MiB)");
        env.put("cuda_driver", Cuda.driverVersion());
        env.put("cuda_runtime", Cuda.runtimeVersion());
        env.put("tensorrt", TensorRt.version());
        return env;
    }

    @Override
    public Pipelines open(Path folder) throws IOException {
        return new CellPipelines(folder, PipelineSpec.read(folder));
    }

    /** The engines' file stem: component and cell (images per request), e.g. {@code denoiser@512x512-b1}. */
    static String engineName(String component, Size size, int images) {
        return component + "@" + size + "-b" + images;
    }

    /**
     * The engines of one pipeline folder for one cell, built into the store or found there: each
     * component's ONNX file (absolute, normalized) mapped to its engine.
     */
    Map<Path, Path> enginesFor(Path folder, PipelineSpec spec, Size size, int images) throws IOException {
        PipelineEngines.Shapes shapes = new PipelineEngines.Shapes(DimRange.fixed(images),
                DimRange.fixed(size.height()), DimRange.fixed(size.width()), false);
        Map<Path, Path> planFor = new HashMap<>();
        Files.createDirectories(store);
        for (PipelineEngines.Target t : PipelineEngines.targets(folder, spec, shapes, optLevel,
                store.resolve("timing.cache"), true, null)) {
            long t0 = System.nanoTime();
            EngineCache.Outcome outcome = cache().buildOrReuseIn(store, engineName(t.component(), size, images), t.request(),
                    progress);
            if (!outcome.reused()) {
                log.printf(Locale.ROOT, "    engine %s: built in %.1f s (%s)%n", outcome.engine().getFileName(),
                        (System.nanoTime() - t0) / 1e9, ByteSizes.human(Files.size(outcome.engine())));
                log.flush();
            }
            planFor.put(t.onnx().toAbsolutePath().normalize(), outcome.engine());
        }
        return planFor;
    }

    private EngineCache cache() {
        if (cache == null) {
            cache = engines.get();
        }
        return cache;
    }

    /** The pipeline of one variant folder on the engines of the cell it last served. */
    private final class CellPipelines implements Pipelines {
        private final Path folder;
        private final PipelineSpec spec;
        private String cell;
        private TrtLoopDevice device;
        private Pipeline pipeline;
        private long freeBeforeOpen;

        CellPipelines(Path folder, PipelineSpec spec) {
            this.folder = folder;
            this.spec = spec;
        }

        @Override
        public Pipeline forCell(Size size, int images, double guidance) throws IOException {
            requireGuided(guidance);
            String key = size + "/" + images;
            if (key.equals(cell)) {
                return pipeline;
            }
            closePipeline();
            Map<Path, Path> planFor = enginesFor(folder, spec, size, images);
            freeBeforeOpen = Cuda.memoryInfo()[0];
            device = new TrtLoopDevice(model -> {
                Path plan = planFor.get(model.toAbsolutePath().normalize());
                if (plan == null) {
                    throw new NoSuchFileException(model.toString(), null, "bench built no engine for it");
                }
                return plan;
            });
            try {
                pipeline = Pipeline.openOnDevice(folder, threads, images, device, replay);
            } catch (IOException | RuntimeException e) {
                closePipeline();
                throw e;
            }
            cell = key;
            return pipeline;
        }

        @Override
        public Long deviceMemoryBytes() {
            return pipeline == null ? null : freeBeforeOpen - Cuda.memoryInfo()[0];
        }

        private void closePipeline() {
            cell = null;
            try {
                if (pipeline != null) {
                    pipeline.close();
                }
            } finally {
                pipeline = null;
                if (device != null) {
                    device.close();
                    device = null;
                }
            }
        }

        @Override
        public void close() {
            closePipeline();
        }
    }
}
