package dev.sdrt.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.cli.bench.BenchChart;
import dev.sdrt.cli.bench.BenchReport;
import dev.sdrt.cli.bench.BenchResult;
import dev.sdrt.cli.bench.BenchRunner;
import dev.sdrt.cli.bench.BenchSettings;
import dev.sdrt.cli.bench.Variant;
import dev.sdrt.enginebuilder.SdrtVersion;
import dev.sdrt.exporter.Component;
import dev.sdrt.exporter.ExportOptions;
import dev.sdrt.exporter.Exporter;
import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.runtime.io.AtomicFiles;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.scheduler.Schedulers;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sdrt bench}: every UNet variant of a pipeline, timed and compared with the baseline, in one process. */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Benchmarks UNet variants (precision, fused QKV, token merging, channels-last, int8/fp8, ...) of a"
                + " pipeline for speed and fidelity against a baseline, and writes bench.md, bench.json and bench.png to --out.",
            "A variant is '+'-joined parts, e.g. fp32+fuse-qkv, fp32+tome:0.5, fp16+tome:0.5+deepcache:3. Parts: "
                + Variant.KNOWN_PARTS + ".",
            "Variant folders are cached under --out (manifest: pass spec + source hash), so a second run starts timing at once."})
final class BenchCommand implements Callable<Integer> {
    static final String MODEL_MARKER = "sdrt-bench-model.json";

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--arch", paramLabel = "ARCH", description = "built-in architecture with random weights: tiny, sd15, sd21"
                + " (sdxl and sd3-medium pipelines are not runnable yet)")
        String arch;

        @Option(names = "--model", paramLabel = "DIR", description = "pipeline folder (from 'sdrt export-pipeline')")
        Path model;
    }

    @Option(names = "--variants", paramLabel = "SPEC", description = "comma-separated variants (default: fp32, fp32+fuse-qkv,"
            + " fp32+tome:0.3, fp32+tome:0.5, and fp32+channels-last where that pass is built in)")
    String variants;

    @Option(names = "--sizes", paramLabel = "LIST", description = "image sizes, e.g. 512,768,1024 or 768x512 (default: the model's)")
    String sizes;

    @Option(names = "--batch", paramLabel = "LIST", defaultValue = "1", description = "batch sizes, e.g. 1,2,4 (default 1)")
    String batch;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "50", description = "denoising steps (default 50)")
    int steps;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "cpu", description = "cpu (ONNX Runtime) or tensorrt (default cpu)")
    String backend;

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

    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "a photograph of an astronaut riding a horse")
    String prompt;

    @Option(names = "--guidance", paramLabel = "G", defaultValue = "7.5", description = "classifier-free guidance scale (default 7.5)")
    double guidance;

    @Option(names = "--scheduler", paramLabel = "NAME", defaultValue = "euler",
            description = "ddim, euler, euler-a, dpm++2m, dpm++2m-karras (default euler)")
    String scheduler;

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
        switch (backend.toLowerCase(Locale.ROOT)) {
            case "cpu", "onnxruntime", "ort" -> { }
            case "tensorrt", "trt" -> throw new UnsupportedOperationException(
                    "TensorRT backend for bench is not implemented yet; use --backend cpu (ONNX Runtime)");
            default -> throw new IllegalArgumentException("unknown backend '" + backend + "'; backends are cpu and tensorrt");
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
        if (!Schedulers.NAMES.contains(scheduler) || scheduler.equals("flow-euler")) {
            throw new IllegalArgumentException("unknown scheduler '" + scheduler + "'; choose one of ddim, euler, euler-a, dpm++2m, dpm++2m-karras");
        }
        if (scales != null && !Files.isRegularFile(scales)) {
            throw new IllegalArgumentException("--scales: no file " + scales);
        }
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter log = spec.commandLine().getOut();
        List<BenchSettings.Size> sizeList = sizes == null ? null : BenchSettings.parseSizes(sizes);
        List<Integer> batches = BenchSettings.parseBatches(batch);
        Set<String> registered = PassPipeline.registeredPasses();
        List<String> names = variants == null ? Variant.defaultNames(registered) : Variant.splitList(variants);
        String base = baseline != null ? baseline.trim() : names.get(0);
        if (!names.contains(base)) {
            throw new IllegalArgumentException("--baseline " + base + " is not one of the variants " + names);
        }

        if (source.arch != null) {
            checkArch(source.arch);
        }
        Files.createDirectories(out);
        Path model;
        String sourceText;
        if (source.arch != null) {
            if (sizeList != null) {
                // before the export, which takes minutes for the full-size architectures
                DiffusersConfig unetConfig = Exporter.builtInConfig(source.arch, Component.UNET);
                DiffusersConfig vaeConfig = Exporter.builtInConfig(source.arch, Component.VAE_DECODER);
                int vaeFactor = 1 << (vaeConfig.requireStringList("up_block_types").size() - 1);
                int unetFactor = 1 << (unetConfig.requireStringList("down_block_types").size() - 1);
                checkSizes(sizeList, vaeFactor, unetFactor, source.arch, null);
            }
            model = exportedModel(source.arch, err);
            sourceText = source.arch + " (random weights, seed " + weightsSeed + ")";
        } else {
            model = source.model;
            sourceText = model.toString();
        }
        PipelineSpec pipeline = PipelineSpec.read(model);
        int unetFactor = unetDownsampling(model, pipeline);
        if (sizeList == null) {
            sizeList = List.of(new BenchSettings.Size(pipeline.defaultWidth, pipeline.defaultHeight));
        }
        checkSizes(sizeList, pipeline.vaeScaleFactor, unetFactor, source.arch != null ? source.arch : model.getFileName().toString(),
                pipeline);

        List<Variant> parsed = new ArrayList<>();
        for (String name : names) {
            parsed.add(Variant.parse(name, registered, scales));
        }
        BenchSettings settings = new BenchSettings(sourceText, model, parsed, base, sizeList, batches, steps, runs, warmup, seed,
                prompt, guidance, scheduler, threads, out, rebuild, scales, commandLine());
        BenchResult result = new BenchRunner(settings, err).run();

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

    /**
     * The built-in architecture's pipeline with random weights, exported into OUT/model-ARCH-seedN
     * once; a marker written last says the export finished, so later runs reuse it.
     */
    private static void checkArch(String arch) {
        if (!Exporter.ARCHITECTURES.contains(arch)) {
            throw new IllegalArgumentException("unknown architecture '" + arch + "'; built in: " + Exporter.ARCHITECTURES);
        }
        if (arch.equals("sdxl") || arch.equals("sd3-medium")) {
            throw new IllegalArgumentException(arch + " pipelines are not runnable by the runtime yet; bench runs tiny, sd15"
                    + " and sd21 (or --model DIR with an SD 1.x/2.x pipeline folder)");
        }
    }

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
        PipelineFolder.random(arch, weightsSeed, model, ExportOptions.defaults(), null, err);
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
     * The UNet's downsampling, 2^(levels − 1), counted from the graph: one stride-2 Conv per
     * downsampler. Image sizes must be multiples of the VAE scale factor times this, since the UNet's
     * skip connections join the feature maps of every level.
     */
    static int unetDownsampling(Path model, PipelineSpec pipeline) throws IOException {
        OnnxModel unet = OnnxModel.load(model.resolve(pipeline.unet));
        int downsamplers = 0;
        for (Node n : unet.graph().nodes()) {
            if (n.is("Conv") && n.hasAttr("strides")) {
                long[] strides = n.attrInts("strides");
                if (strides.length == 2 && strides[0] == 2 && strides[1] == 2) {
                    downsamplers++;
                }
            }
        }
        return 1 << Math.min(downsamplers, 8);
    }

    private static void checkSizes(List<BenchSettings.Size> sizes, int vaeFactor, int unetFactor, String name, PipelineSpec pipeline) {
        int multiple = vaeFactor * unetFactor;
        List<String> bad = new ArrayList<>();
        int side = 0;
        for (BenchSettings.Size s : sizes) {
            if (s.width() % multiple != 0 || s.height() % multiple != 0) {
                bad.add(s.toString());
                if (side == 0) {
                    side = s.width() % multiple != 0 ? s.width() : s.height();
                }
            }
        }
        if (!bad.isEmpty()) {
            int below = Math.max(multiple, side / multiple * multiple);
            int above = (side / multiple + 1) * multiple;
            throw new IllegalArgumentException(String.format(Locale.ROOT, "--sizes %s: %s needs widths and heights that are"
                    + " multiples of %d (VAE scale factor %d × UNet downsampling %d), e.g. %d or %d instead of %d%s",
                    String.join(",", bad), name, multiple, vaeFactor, unetFactor, below, above, side,
                    pipeline == null ? "" : "; its default is " + pipeline.defaultWidth + "x" + pipeline.defaultHeight));
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
