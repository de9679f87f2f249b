package dev.sdrt.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.cli.bench.BenchBackend;
import dev.sdrt.cli.bench.BenchChart;
import dev.sdrt.cli.bench.BenchReport;
import dev.sdrt.cli.bench.BenchResult;
import dev.sdrt.cli.bench.BenchRunner;
import dev.sdrt.cli.bench.BenchSettings;
import dev.sdrt.cli.bench.Variant;
import dev.sdrt.enginebuilder.EngineCache;
import dev.sdrt.enginebuilder.PrintingBuildProgress;
import dev.sdrt.enginebuilder.SdrtVersion;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.Exporter;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.runtime.io.AtomicFiles;
import dev.sdrt.runtime.pipeline.PipelineFamily;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.scheduler.Schedulers;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt bench}: every denoiser variant of a pipeline (the UNet of SD 1.x/2.x and SDXL, SD3's
 * transformer), timed and compared with the baseline, in one process.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Benchmarks denoiser variants (precision, fused QKV, token merging, channels-last, int8/fp8, ...) of a"
                + " pipeline (SD 1.x/2.x, SDXL or SD3) for speed and fidelity against a baseline, and writes bench.md,"
                + " bench.json and bench.png to --out.",
            "A variant is '+'-joined parts, e.g. fp32+fuse-qkv, fp32+tome:0.5, fp16+tome:0.5+deepcache:3. Parts: "
                + Variant.KNOWN_PARTS + ".",
            "Variant folders are cached under --out (manifest: pass spec + source hash), so a second run starts timing at once."})
final class BenchCommand implements Callable<Integer> {
    static final String MODEL_MARKER = "sdrt-bench-model.json";

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--arch", paramLabel = "ARCH", completionCandidates = Architectures.class,
                description = "built-in architecture with random weights: ${COMPLETION-CANDIDATES}")
        String arch;

        @Option(names = "--model", paramLabel = "DIR", description = "pipeline folder (from 'sdrt export-pipeline'): SD 1.x/2.x,"
                + " SDXL or SD3")
        Path model;
    }

    @Option(names = "--variants", paramLabel = "SPEC", description = "comma-separated variants (default: fp32, fp32+fuse-qkv,"
            + " fp32+tome:0.3, fp32+tome:0.5 (SDXL: with :max_downsample=2; none for SD3, whose attention is joint), and"
            + " fp32+channels-last where that pass is built in)")
    String variants;

    @Option(names = "--sizes", paramLabel = "LIST", description = "image sizes, e.g. 512,768,1024 or 768x512 (default: the model's)")
    String sizes;

    @Option(names = "--batch", paramLabel = "LIST", defaultValue = "1", description = "batch sizes, e.g. 1,2,4 (default 1)")
    String batch;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "50", description = "denoising steps (default 50)")
    int steps;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "cpu", converter = Backend.Converter.class,
            description = Backend.HELP + "; tensorrt builds static engines per size and batch once into OUT/engines")
    Backend backend;

    @Option(names = "--cuda-graph", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "tensorrt, cpu-loop: capture each cell's launches once and replay them (CUDA graphs on the GPU;"
                    + " default on; --no-cuda-graph queues every launch)")
    boolean cudaGraph;

    @Option(names = "--opt-level", paramLabel = "0-5", defaultValue = "3",
            description = "tensorrt: builder optimization level of the engines (default 3; lower builds faster)")
    int optLevel;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "sdrt-bench", description = "output folder (default sdrt-bench)")
    Path out;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "3", description = "timed runs per cell (default 3)")
    int runs;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "1", description = "warm-up runs per cell (default 1)")
    int warmup;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "generation seed, the same for every variant (default 0)")
    long seed;

    @Option(names = "--weights-seed", paramLabel = "N", defaultValue = "0", description = "with --arch: seed of the random weights (default 0)")
    long weightsSeed;

    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "a photograph of an astronaut riding a horse",
            description = "the prompt of every run (default: ${DEFAULT-VALUE})")
    String prompt;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--baseline", paramLabel = "VARIANT", description = "the variant others are compared with (default: the first)")
    String baseline;

    @Option(names = "--scales", paramLabel = "FILE.json", description = "calibration scales for int8/fp8 variants (from 'sdrt calibrate')")
    Path scales;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0", description = "CPU threads (default: all cores)")
    int threads;

    @Option(names = "--rebuild", description = "export (--arch) and rewrite the variant folders again even when their manifests match")
    boolean rebuild;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (backend == Backend.TENSORRT) {
            TensorRtChecks.checkOptLevel(optLevel);
            TensorRtBenchBackend.requireGuided(sampling.guidance); // before an export that can take minutes
            TensorRtChecks.requireTensorRtBackend("--backend cpu runs without one"); // before an export that can take minutes
        }
        if (steps < 1 || steps > 1000) {
            throw new IllegalArgumentException("--steps must be between 1 and 1000, got " + steps);
        }
        if (runs < 1) {
            throw new IllegalArgumentException("--runs must be at least 1, got " + runs);
        }
        if (warmup < 0) {
            throw new IllegalArgumentException("--warmup must not be negative, got " + warmup);
        }
        String scheduler = sampling.scheduler;
        if (scheduler != null && !Schedulers.NAMES.contains(scheduler)) {
            throw new IllegalArgumentException("unknown scheduler '" + scheduler + "'; choose one of "
                    + String.join(", ", Schedulers.NAMES));
        }
        if (scales != null && !Files.isRegularFile(scales)) {
            throw new IllegalArgumentException("--scales: no file " + scales);
        }
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter log = spec.commandLine().getOut();
        List<BenchSettings.Size> sizeList = sizes == null ? null : BenchSettings.parseSizes(sizes);
        List<Integer> batches = BenchSettings.parseBatches(batch);
        Set<String> registered = PassPipeline.registeredPasses();
        List<String> names = variants == null ? null : Variant.splitList(variants);
        if (names != null) {
            checkBaseline(names);
        }

        if (source.arch != null) {
            checkArch(source.arch);
        }
        Files.createDirectories(out);
        Path model;
        String sourceText;
        if (source.arch != null) {
            PipelineFamily family = PipelineFolder.familyOf(source.arch);
            if (names == null) {
                // before the export, which takes minutes for the full-size architectures
                checkBaseline(Variant.defaultNames(registered, family));
            }
            if (sizeList != null) {
                checkSizes(sizeList, PipelineFolder.builtInSpec(source.arch));
            }
            model = exportedModel(source.arch, err);
            sourceText = source.arch + " (random weights, seed " + weightsSeed + ")";
        } else {
            model = source.model;
            sourceText = model.toString();
        }
        PipelineSpec pipeline = PipelineSpec.read(model);
        PipelineFamily family = pipeline.family();
        if (names == null) {
            names = Variant.defaultNames(registered, family);
            checkBaseline(names);
        }
        String base = baseline != null ? baseline.trim() : names.get(0);
        if (pipeline.latentSizeMultiple == 0) {
            // a folder from before sdrt recorded it
            pipeline.latentSizeMultiple = denoiserDownsampling(model, pipeline);
        }
        if (sizeList == null) {
            sizeList = List.of(new BenchSettings.Size(pipeline.defaultWidth, pipeline.defaultHeight));
        }
        checkSizes(sizeList, pipeline);
        String schedulerName = scheduler != null ? scheduler : family.defaultScheduler();
        Schedulers.requireFor(schedulerName, family.modelKind());

        List<Variant> parsed = new ArrayList<>();
        for (String name : names) {
            parsed.add(Variant.parse(name, registered, scales));
        }
        BenchSettings settings = new BenchSettings(sourceText, model, parsed, base, sizeList, batches, steps, runs, warmup, seed,
                prompt, sampling.guidance, schedulerName, threads, backend.id(), out, rebuild, scales, commandLine());
        BenchBackend benchBackend = switch (backend) {
            case CPU -> BenchBackend.onnxRuntime(threads);
            case CPU_LOOP -> BenchBackend.cpuLoop(threads, cudaGraph);
            case TENSORRT -> new TensorRtBenchBackend(out.resolve("engines"), threads, optLevel, cudaGraph, err,
                    EngineCache::forThisMachine, new PrintingBuildProgress(System.err));
        };
        BenchResult result = new BenchRunner(settings, benchBackend, err).run();

        String markdown = BenchReport.markdown(result);
        Path md = out.resolve("bench.md");
        Path json = out.resolve("bench.json");
        Path png = out.resolve("bench.png");
        AtomicFiles.write(md, tmp -> Files.writeString(tmp, markdown));
        String jsonText = BenchReport.json(result);
        AtomicFiles.write(json, tmp -> Files.writeString(tmp, jsonText));
        BenchChart.write(result, png);
        log.print(markdown);
        log.printf("%nwrote %s, %s and %s in %.1f s%n", md, json, png, result.seconds());
        log.flush();
        boolean anyRan = result.variants().stream().anyMatch(v -> v.cells().stream().anyMatch(BenchResult.Cell::ok));
        return anyRan ? 0 : 1;
    }

    private void checkBaseline(List<String> names) {
        String base = baseline != null ? baseline.trim() : names.get(0);
        if (!names.contains(base)) {
            throw new IllegalArgumentException("--baseline " + base + " is not one of the variants " + names);
        }
    }

    private static void checkArch(String arch) {
        if (!Exporter.ARCHITECTURES.contains(arch)) {
            throw new IllegalArgumentException("unknown architecture '" + arch + "'; built in: " + Exporter.ARCHITECTURES);
        }
    }

    /**
     * The built-in architecture's pipeline with random weights, exported into OUT/model-ARCH-seedN
     * once; a marker written last says the export finished, so later runs reuse it.
     */
    private Path exportedModel(String arch, PrintWriter err) throws IOException {
        Path model = out.resolve("model-" + arch + "-seed" + weightsSeed);
        Path marker = model.resolve(MODEL_MARKER);
        if (!rebuild && Files.isRegularFile(marker) && Files.isRegularFile(model.resolve(PipelineSpec.FILE_NAME))) {
            try {
                JsonObject m = JsonParser.parseString(Files.readString(marker)).getAsJsonObject();
                if (arch.equals(m.get("arch").getAsString()) && m.get("weights_seed").getAsLong() == weightsSeed
                        && SdrtVersion.get().equals(m.get("sdrt_version").getAsString())) {
                    err.printf("model: reused %s (%s, random weights, seed %d)%n", model, arch, weightsSeed);
                    err.flush();
                    return model;
                }
            } catch (RuntimeException e) {
                // unreadable marker: export again
            }
        }
        deleteTree(model);
        err.printf("model: exporting %s with random weights (seed %d) to %s%n", arch, weightsSeed, model);
        err.flush();
        long start = System.nanoTime();
        PipelineFolder.random(arch, weightsSeed, model, ExportOptions.defaults(), null, err, err);
        JsonObject m = new JsonObject();
        m.addProperty("arch", arch);
        m.addProperty("weights_seed", weightsSeed);
        m.addProperty("sdrt_version", SdrtVersion.get());
        Files.writeString(marker, m.toString());
        err.printf("model: exported in %.1f s%n", (System.nanoTime() - start) / 1e9);
        err.flush();
        return model;
    }

    /**
     * How many latent pixels the denoiser needs per step of size. A UNet's downsampling,
     * 2^(levels − 1), counted from the graph: one stride-2 Conv per downsampler (its skip
     * connections join the feature maps of every level). SD3's transformer: its patch size, the
     * stride of the patch-embedding Conv. Image sizes must be multiples of the VAE scale factor
     * times this.
     */
    static int denoiserDownsampling(Path model, PipelineSpec pipeline) throws IOException {
        OnnxModel denoiser = OnnxModel.load(model.resolve(pipeline.denoiser()));
        if (!pipeline.family().hasUnet()) {
            for (Node n : denoiser.graph().nodes()) {
                if (n.is("Conv") && n.hasAttr("strides")) {
                    long[] strides = n.attrInts("strides");
                    if (strides.length == 2 && strides[0] == strides[1] && strides[0] > 1) {
                        return (int) strides[0];
                    }
                }
            }
            return 1;
        }
        int downsamplers = 0;
        for (Node n : denoiser.graph().nodes()) {
            if (n.is("Conv") && n.hasAttr("strides")) {
                long[] strides = n.attrInts("strides");
                if (strides.length == 2 && strides[0] == 2 && strides[1] == 2) {
                    downsamplers++;
                }
            }
        }
        return 1 << Math.min(downsamplers, 8);
    }

    private static void checkSizes(List<BenchSettings.Size> sizes, PipelineSpec pipeline) {
        for (BenchSettings.Size s : sizes) {
            String problem = pipeline.sizeProblem(s.width(), s.height());
            if (problem != null) {
                throw new IllegalArgumentException("--sizes " + s + ": " + problem + " (the pipeline's default is "
                        + pipeline.defaultWidth + "x" + pipeline.defaultHeight + ")");
            }
        }
    }

    private String commandLine() {
        StringBuilder sb = new StringBuilder("sdrt");
        for (String a : spec.commandLine().getParseResult().originalArgs()) {
            sb.append(' ').append(a.matches("[A-Za-z0-9_./:=+,@%-]+") ? a : "'" + a.replace("'", "'\\''") + "'");
        }
        return sb.toString();
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
