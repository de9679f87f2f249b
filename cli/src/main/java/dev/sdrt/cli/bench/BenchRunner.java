package dev.sdrt.cli.bench;

import dev.sdrt.calibration.FidelityReport;
import dev.sdrt.cli.Progress;
import dev.sdrt.cli.bench.BenchResult.Cell;
import dev.sdrt.cli.bench.BenchResult.CellStatus;
import dev.sdrt.cli.bench.BenchResult.VariantResult;
import dev.sdrt.cli.bench.BenchSettings.Size;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.pipeline.StepListener;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Runs every variant of a bench in one process on one {@link BenchBackend}: the baseline first, then
 * the others in the order given; per variant its folder opened once (a TensorRT backend then opens
 * the engines of each cell), per size and batch the warm-up runs and then the timed runs, all with the
 * same prompt and seed. A variant or cell that fails is recorded with its reason and the rest still run.
 */
public final class BenchRunner {
    private final BenchSettings settings;
    private final BenchBackend backend;
    private final PrintWriter log;
    private final Map<String, Outputs> baselineOutputs = new HashMap<>();
    private final Map<String, Double> baselineSecondsPerImage = new HashMap<>();
    /** Null until the variants start. */
    private Progress bar;

    /** The baseline's images and latents of one cell, for the fidelity of the others. */
    private record Outputs(float[] latents, byte[][] rgb) {
    }

    /** @param log where progress lines go (stderr for the command) */
    public BenchRunner(BenchSettings settings, BenchBackend backend, PrintWriter log) {
        if (!backend.id().equals(settings.backend())) {
            throw new IllegalArgumentException("settings name backend " + settings.backend() + ", given " + backend.id());
        }
        this.settings = settings;
        this.backend = backend;
        this.log = log;
    }

    public BenchResult run() throws IOException {
        Instant started = Instant.now();
        long start = System.nanoTime();
        Map<String, String> environment = BenchEnvironment.describe(settings.threads());
        environment.putAll(backend.environment());
        PipelineSpec spec = PipelineSpec.read(settings.model());
        VariantFolders folders = new VariantFolders(settings.model(), spec, settings.out().resolve("variants"),
                settings.rebuild(), settings.scales());

        List<Variant> order = new ArrayList<>();
        for (Variant v : settings.variants()) {
            if (v.name().equals(settings.baseline())) {
                order.add(0, v);
            } else {
                order.add(v);
            }
        }
        int cells = settings.sizes().size() * settings.batches().size();
        say("bench: %d variants, sizes %s, batch %s, %d steps (%s), %d warm-up + %d timed runs each, seed %d, baseline %s"
                + " (%s; threads: %s, %s)", order.size(), settings.sizes(), settings.batches(),
                settings.steps(), settings.scheduler(), settings.warmup(), settings.runs(), settings.seed(), settings.baseline(),
                environment.get("backend"), environment.get("threads"), environment.get("cpu"));
        long runnable = order.stream().filter(Variant::runnable).count();
        bar = Progress.start(log, "bench", runnable * cells * (long) (settings.warmup() + settings.runs()) * settings.steps(),
                "steps", 500);
        Map<String, VariantResult> results = new HashMap<>();
        try {
            int index = 0;
            for (Variant v : order) {
                index++;
                results.put(v.name(), runVariant(v, index, order.size(), folders, spec));
            }
        } finally {
            bar.close();
        }
        List<VariantResult> inOrder = settings.variants().stream().map(v -> results.get(v.name())).toList();
        return new BenchResult(settings, environment, inOrder, started, (System.nanoTime() - start) / 1e9);
    }

    private VariantResult runVariant(Variant v, int index, int total, VariantFolders folders, PipelineSpec spec) {
        String head = String.format("[%d/%d] %s", index, total, v.name());
        if (v.status() == Variant.Status.FAILED) {
            say("%s: failed: %s", head, v.reason());
            return new VariantResult(v, "failed", v.reason(), null, null, 0, List.of(), List.of());
        }
        if (v.deepCache() > 1 && !spec.family().hasUnet()) {
            bar.maxHint(bar.max() - stepsPerVariant());
            String reason = "deepcache:" + v.deepCache() + " splits a UNet, and this " + spec.family().id()
                    + " pipeline has none (its denoiser is a transformer)";
            say("%s: failed: %s", head, reason);
            return new VariantResult(v, "failed", reason, null, null, 0, List.of(), List.of());
        }
        if (v.perCell()) {
            return runPerCell(v, head, folders, spec);
        }
        VariantFolders.Prepared prepared;
        try {
            prepared = folders.prepare(v);
        } catch (Exception | OutOfMemoryError e) {
            bar.maxHint(bar.max() - stepsPerVariant());
            String reason = "rewriting the " + denoiserName(spec) + " (" + v.passes() + "): " + message(e);
            say("%s: failed: %s", head, reason);
            return new VariantResult(v, "failed", reason, null, null, 0, List.of(), List.of());
        }
        sayPrepared(head, v, prepared);
        List<Cell> cells = new ArrayList<>();
        System.gc();
        long rssBefore = ProcessMemory.rssBytes();
        try (BenchBackend.Pipelines pipelines = backend.open(prepared.folder())) {
            for (Size size : settings.sizes()) {
                for (int batch : settings.batches()) {
                    cells.add(runCell(v, pipelines, size, batch, rssBefore));
                }
            }
        } catch (Exception | OutOfMemoryError e) {
            bar.maxHint(bar.max() - stepsPerVariant() + stepsPerCell() * cells.size());
            String reason = loadFailure(e);
            say("%s: failed: %s", head, reason);
            return new VariantResult(v, "failed", reason, prepared.cache(), prepared.folder(), prepared.millis(),
                    prepared.passes(), cells);
        }
        return new VariantResult(v, "ok", null, prepared.cache(), prepared.folder(), prepared.millis(), prepared.passes(), cells);
    }

    /**
     * A variant whose passes need static shapes: per cell, its folder with the denoiser pinned to
     * the cell's batch and latent size, and a pipeline on it. A cell whose folder cannot be made or
     * opened fails alone.
     */
    private VariantResult runPerCell(Variant v, String head, VariantFolders folders, PipelineSpec spec) {
        List<Cell> cells = new ArrayList<>();
        List<VariantFolders.Prepared> prepared = new ArrayList<>();
        String firstFailure = null;
        for (Size size : settings.sizes()) {
            for (int batch : settings.batches()) {
                String where = String.format("%s %s batch %d", head, size, batch);
                VariantFolders.Pin pin = VariantFolders.Pin.of(size, batch, settings.guidance(), spec.vaeScaleFactor);
                VariantFolders.Prepared p;
                try {
                    p = folders.prepare(v, pin);
                } catch (Exception | OutOfMemoryError e) {
                    skipCellSteps();
                    String reason = "rewriting the " + denoiserName(spec) + " pinned to " + pin.describe().replace(';', ' ')
                            + " (" + v.passes() + "): " + message(e);
                    say("%s: failed: %s", where, reason);
                    cells.add(Cell.failed(size, batch, CellStatus.FAILED, reason, null));
                    firstFailure = firstFailure == null ? reason : firstFailure;
                    continue;
                }
                prepared.add(p);
                sayPrepared(where, v, p);
                System.gc();
                long rssBefore = ProcessMemory.rssBytes();
                try (BenchBackend.Pipelines pipelines = backend.open(p.folder())) {
                    cells.add(runCell(v, pipelines, size, batch, rssBefore).withPrepared(p));
                } catch (Exception | OutOfMemoryError e) {
                    skipCellSteps();
                    String reason = loadFailure(e);
                    say("%s: failed: %s", where, reason);
                    cells.add(Cell.failed(size, batch, isOom(e) ? CellStatus.OOM : CellStatus.FAILED, reason, p));
                    firstFailure = firstFailure == null ? reason : firstFailure;
                }
            }
        }
        if (prepared.isEmpty()) {
            return new VariantResult(v, "failed", firstFailure, null, null, 0, List.of(), cells);
        }
        Map<String, Integer> caches = new LinkedHashMap<>();
        prepared.forEach(p -> caches.merge(p.cache(), 1, Integer::sum));
        String cache = caches.size() == 1 ? caches.keySet().iterator().next()
                : String.join(", ", caches.entrySet().stream().map(e -> e.getKey() + " " + e.getValue()).toList());
        double millis = prepared.stream().mapToDouble(VariantFolders.Prepared::millis).sum();
        VariantFolders.Prepared first = prepared.get(0);
        return new VariantResult(v, "ok", null, cache, first.folder(), millis, first.passes(), cells);
    }

    private void sayPrepared(String head, Variant v, VariantFolders.Prepared prepared) {
        switch (prepared.cache()) {
            case "reused" -> say("%s: reused %s (manifest matches: passes %s, same source denoiser)", head,
                    settings.out().relativize(prepared.folder()), v.passes());
            case "built" -> say("%s: built %s in %.1f s (%s)", head, settings.out().relativize(prepared.folder()),
                    prepared.millis() / 1000, describe(prepared.passes()));
            default -> say("%s: the exported model, no passes", head);
        }
    }

    private void skipCellSteps() {
        bar.maxHint(bar.max() - stepsPerCell());
    }

    private static String loadFailure(Throwable e) {
        return (isOom(e) ? "OOM while loading: " : "could not open its pipeline: ") + message(e);
    }

    private static String denoiserName(PipelineSpec spec) {
        return spec.family().hasUnet() ? "UNet" : "transformer";
    }

    private Cell runCell(Variant v, BenchBackend.Pipelines pipelines, Size size, int batch, long rssBefore) {
        String where = String.format("    %s %s batch %d", v.name(), size, batch);
        boolean isBaseline = v.name().equals(settings.baseline());
        GenerationRequest request = GenerationRequest.of(settings.prompt()).withSteps(settings.steps())
                .withGuidanceScale(settings.guidance()).withSeed(settings.seed()).withSize(size.width(), size.height())
                .withBatchSize(batch).withScheduler(settings.scheduler()).withDeepCache(v.deepCache(), false);
        int runs = settings.runs();
        double[] runMs = new double[runs];
        double[] unet = new double[runs];
        double[] text = new double[runs];
        double[] vae = new double[runs];
        GeneratedImage first = null;
        boolean peakReset;
        Long deviceMemory;
        try {
            Pipeline pipeline = pipelines.forCell(size, batch, settings.guidance());
            peakReset = ProcessMemory.resetPeak(); // after any engine build, which is not the cell's
            for (int i = 0; i < settings.warmup(); i++) {
                long t0 = System.nanoTime();
                pipeline.generate(request, progress());
                slowRun(where, "warm-up", i, settings.warmup(), t0);
            }
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                GeneratedImage image = pipeline.generate(request, progress());
                runMs[i] = (System.nanoTime() - t0) / 1e6;
                slowRun(where, "run", i, runs, t0);
                GeneratedImage.Timings t = image.timings();
                unet[i] = t.denoiseMs() / t.steps();
                text[i] = t.textEncoderMs();
                vae[i] = t.vaeDecoderMs();
                if (first == null) {
                    first = image;
                }
            }
            deviceMemory = pipelines.deviceMemoryBytes();
        } catch (Exception | OutOfMemoryError e) {
            boolean oom = isOom(e);
            String reason = message(e);
            say("%s: %s", where, oom ? "OOM: " + reason : "failed: " + reason);
            return Cell.failed(size, batch, oom ? CellStatus.OOM : CellStatus.FAILED, reason, null);
        }
        Long peak = null;
        String memoryMethod;
        if (peakReset && ProcessMemory.peakBytes() > 0) {
            peak = ProcessMemory.peakBytes();
            memoryMethod = "peak process RSS during the cell (VmHWM, reset before the cell); delta: minus RSS before the"
                    + " variant's pipeline opened";
        } else if (ProcessMemory.rssBytes() > 0) {
            peak = ProcessMemory.rssBytes();
            memoryMethod = "process RSS after the cell (the peak cannot be reset here); delta: minus RSS before the variant's"
                    + " pipeline opened";
        } else {
            memoryMethod = "n/a (no /proc/self/status)";
        }
        Long rssDelta = peak != null && rssBefore > 0 ? peak - rssBefore : null;

        double[] perImage = new double[runs];
        for (int i = 0; i < runs; i++) {
            perImage[i] = runMs[i] / 1000 / batch;
        }
        Stats secondsPerImage = Stats.of(perImage);
        Stats unetStep = Stats.of(unet);
        String key = size + "/" + batch;
        float[] latents = first.latents().toFloatArray();
        Double speedup = null;
        FidelityReport fidelity = null;
        if (isBaseline) {
            baselineOutputs.put(key, new Outputs(latents, first.rgb()));
            baselineSecondsPerImage.put(key, secondsPerImage.median());
            speedup = 0.0;
        } else {
            Double base = baselineSecondsPerImage.get(key);
            if (base != null) {
                speedup = (base / secondsPerImage.median() - 1) * 100;
            }
            Outputs b = baselineOutputs.get(key);
            if (b != null) {
                fidelity = FidelityReport.of(b.latents(), latents, b.rgb(), first.rgb());
            }
        }
        say("%s: %.4f s/image (median of %d, %.4f–%.4f), UNet %.2f ms/step%s%s", where, secondsPerImage.median(), runs,
                secondsPerImage.min(), secondsPerImage.max(), unetStep.median(),
                speedup == null || isBaseline ? "" : String.format(Locale.ROOT, ", %+.1f%% vs %s", speedup, settings.baseline()),
                fidelity == null ? "" : String.format(Locale.ROOT, ", latent cosine %.6f", fidelity.latentCosine()));
        return new Cell(size, batch, CellStatus.OK, null, runMs, unet, text, vae, secondsPerImage, unetStep, speedup, peak, rssDelta,
                deviceMemory, memoryMethod, fidelity, null);
    }

    /**
     * Advances the progress bar by the steps a request reports done: one by one on the host loop, all
     * at once when a device loop's batch comes back.
     */
    private StepListener progress() {
        int[] reported = {0};
        return (done, total) -> {
            bar.stepBy(done - reported[0]);
            reported[0] = done;
        };
    }

    /** A line per run that took a while, so a long cell shows it is moving (short ones stay quiet). */
    private void slowRun(String where, String what, int i, int of, long t0) {
        double s = (System.nanoTime() - t0) / 1e9;
        if (s >= 2) {
            say("%s: %s %d/%d took %.1f s", where, what, i + 1, of, s);
        }
    }

    private long stepsPerCell() {
        return (long) (settings.warmup() + settings.runs()) * settings.steps();
    }

    private long stepsPerVariant() {
        return stepsPerCell() * settings.sizes().size() * settings.batches().size();
    }

    private static String describe(List<VariantFolders.PassSummary> passes) {
        if (passes.isEmpty()) {
            return "no passes";
        }
        List<String> parts = new ArrayList<>();
        for (VariantFolders.PassSummary p : passes) {
            parts.add(p.pass() + ": matched " + p.matched() + ", " + p.nodesBefore() + " → " + p.nodesAfter() + " nodes");
        }
        return String.join("; ", parts);
    }

    private static Throwable unwrap(Throwable e) {
        Throwable t = e;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    static boolean isOom(Throwable e) {
        Throwable t = unwrap(e);
        if (t instanceof OutOfMemoryError) {
            return true;
        }
        for (Throwable c = t; c != null; c = c.getCause()) {
            String m = String.valueOf(c.getMessage()).toLowerCase(Locale.ROOT);
            if (m.contains("bad_alloc") || m.contains("failed to allocate") || m.contains("out of memory")) {
                return true;
            }
        }
        return false;
    }

    /** The first line of the innermost useful message. */
    static String message(Throwable e) {
        Throwable t = unwrap(e);
        String m = t.getMessage();
        if (m == null || m.isBlank()) {
            m = t.getClass().getSimpleName();
        } else if (t instanceof OutOfMemoryError) {
            m = "Java heap: " + m;
        }
        m = m.strip();
        int nl = m.indexOf('\n');
        return nl > 0 ? m.substring(0, nl).strip() : m;
    }

    private void say(String format, Object... args) {
        String line = String.format(Locale.ROOT, format, args);
        if (bar != null) {
            bar.println(line);
        } else {
            log.println(line);
            log.flush();
        }
    }
}
