package dev.sdrt.cli.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.sdrt.calibration.FidelityReport;
import dev.sdrt.cli.bench.BenchResult.Cell;
import dev.sdrt.cli.bench.BenchResult.VariantResult;
import dev.sdrt.cli.bench.BenchSettings.Size;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** bench.md (the table a user reads) and bench.json (every raw number and the environment). */
public final class BenchReport {
    public static final String JSON_FORMAT = "sdrt-bench-1";
    static final String DEVICE_MEMORY_CPU = "n/a (cpu)";

    private BenchReport() {
    }

    // ======================= Markdown =======================

    public static String markdown(BenchResult r) {
        BenchSettings s = r.settings();
        Map<String, String> env = r.environment();
        StringBuilder md = new StringBuilder();
        md.append("# sdrt bench\n\n");
        md.append("```\n").append(s.commandLine()).append("\n```\n\n");
        md.append(String.format(Locale.ROOT, "Model: %s. %s %s on %s (%s cores, threads: %s), Java %s, sdrt %s, GPU: %s. "
                + "Run %s, %.1f s.%n%n", s.source(), env.get("backend"), env.get("onnxruntime"), env.get("cpu"),
                env.get("cores"), env.get("threads"), System.getProperty("java.version"), env.get("sdrt"), env.get("gpu"),
                r.started(), r.seconds()));
        md.append(String.format(Locale.ROOT, "%d steps, %s scheduler, guidance %s, prompt \"%s\", seed %d; %d warm-up and "
                + "%d timed runs per cell; baseline **%s**.%n%n", s.steps(), s.scheduler(), trim(s.guidance()),
                s.prompt(), s.seed(), s.warmup(), s.runs(), s.baseline()));

        md.append("| variant | size | batch | s/image (median) | spread (min–max) | speed-up | UNet ms/step | peak RSS (Δ MiB) "
                + "| device memory | latent cosine | latent PSNR | image cosine | image PSNR | status |\n");
        md.append("|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|\n");
        for (VariantResult v : r.variants()) {
            String name = "`" + v.variant().name() + "`";
            if (!v.ran() && v.cells().isEmpty()) {
                md.append("| ").append(name).append(" | — | — | — | — | — | — | — | — | — | — | — | — | ")
                        .append(escape(v.status() + ": " + v.reason())).append(" |\n");
                continue;
            }
            boolean isBaseline = v.variant().name().equals(s.baseline());
            for (Cell c : v.cells()) {
                md.append("| ").append(name).append(" | ").append(c.size()).append(" | ").append(c.batch()).append(" | ");
                if (!c.ok()) {
                    md.append("— | — | — | — | — | — | — | — | — | — | ")
                            .append(escape(c.status() == BenchResult.CellStatus.OOM ? "OOM: " + c.reason() : "failed: " + c.reason()))
                            .append(" |\n");
                    continue;
                }
                Stats sp = c.secondsPerImage();
                md.append(String.format(Locale.ROOT, "%.4f | %.4f–%.4f | ", sp.median(), sp.min(), sp.max()));
                md.append(isBaseline ? "0% (baseline)" : c.speedupPct() == null ? "n/a" : String.format(Locale.ROOT, "%+.1f%%",
                        c.speedupPct())).append(" | ");
                md.append(String.format(Locale.ROOT, "%.2f", c.unetStep().median())).append(" | ");
                md.append(c.peakRssBytes() == null ? "n/a" : String.format(Locale.ROOT, "%.0f MiB (%s)", c.peakRssBytes() / 1048576.0,
                        c.rssDeltaBytes() == null ? "Δ n/a" : String.format(Locale.ROOT, "Δ %+.0f", c.rssDeltaBytes() / 1048576.0)))
                        .append(" | ").append(c.deviceMemoryBytes() == null ? DEVICE_MEMORY_CPU
                                : String.format(Locale.ROOT, "%.0f MiB", c.deviceMemoryBytes() / 1048576.0)).append(" | ");
                FidelityReport f = c.fidelity();
                if (isBaseline) {
                    md.append("ref | ref | ref | ref | ");
                } else if (f == null) {
                    md.append("n/a | n/a | n/a | n/a | ");
                } else {
                    md.append(String.format(Locale.ROOT, "%.6f | %s | %.6f | %s | ", f.latentCosine(), db(f.latentPsnr()),
                            f.imageCosine(), db(f.imagePsnr())));
                }
                md.append("ok |\n");
            }
            if (!v.ran()) {
                md.append("| ").append(name).append(" | — | — | — | — | — | — | — | — | — | — | — | — | ")
                        .append(escape(v.status() + ": " + v.reason())).append(" |\n");
            }
        }

        md.append("\n- **s/image**: wall time of one request (text encoder — served from the prompt cache after the first "
                + "run —, the denoising loop, the VAE decoder) divided by the batch; median of the timed runs, spread = min–max.\n");
        md.append("- **speed-up**: baseline s/image ÷ variant s/image − 1, at the same size and batch.\n");
        md.append(s.backend().equals("cpu")
                ? "- **UNet ms/step**: denoising loop time ÷ steps (one denoiser call — the UNet, or SD3's transformer — over the "
                        + "classifier-free-guidance batch of 2 × batch, plus the host-side scheduler update).\n"
                : "- **UNet ms/step**: device loop time ÷ steps, as the host sees it from the upload to the one read-back: per step "
                        + "one denoiser call over the classifier-free-guidance batch of 2 × batch and the scheduler-step graph, and "
                        + "the VAE decode spread over the steps (it runs in the same queue).\n");
        md.append("- **peak RSS**: the process's peak resident memory during the cell (JVM heap + ONNX Runtime native memory); "
                + "Δ = that peak minus the RSS just before the variant's pipeline opened (its weights, sessions and activations). "
                + "Memory a previous variant or the JVM's heap released or kept shifts Δ, so read it as a rough figure (it can be "
                + "negative on small models). **Device memory**: GPU memory the cell's pipeline added (free memory before its "
                + "engines were loaded minus free memory after the cell: engines, activations, loop buffers); an engine an earlier "
                + "cell already loaded, such as a VAE decoder that variants share, is loaded once per process and not counted "
                + "again; n/a on the CPU.\n");
        md.append("- **fidelity**: the variant's final latents and decoded images against the baseline's (same prompt, seed, "
                + "size and batch): cosine similarity, and PSNR (latents: peak = the baseline latents' range; images: 8-bit, "
                + "peak 255; ∞ = identical).\n");
        md.append("- Variant parts: `fp32` (the exported graph), `fp16`/`bf16` (precision pass, run last, or just before int8/fp8 so that their Q/DQ take half scales), `fuse-qkv`, "
                + "`channels-last`, `tome:R[:max_downsample=D]` (`tome:ratio=R`, built per size and batch on the denoiser pinned with `static-shapes`; "
                + "`tome:0` pins without merging, a control for what static shapes alone change), `int8`/`fp8` (qdq with "
                + "`--scales`), `deepcache:N` (DeepCache: full UNet every N steps, shallow UNet between; UNet pipelines only).\n");
        md.append("\nVariant folders (under `variants/`, reused while their manifest matches):\n\n");
        for (VariantResult v : r.variants()) {
            if (v.cache() == null && v.cells().stream().noneMatch(c -> c.prepared() != null)) {
                continue;
            }
            md.append("- `").append(v.variant().name()).append("`: ");
            if (!v.variant().perCell()) {
                md.append(v.cache());
                if (!v.variant().passes().isEmpty()) {
                    md.append(" — passes `").append(v.variant().passes()).append("`");
                    passNotes(md, v.passes());
                }
                md.append('\n');
                continue;
            }
            md.append(v.cache() == null ? "failed" : v.cache()).append(" — passes `").append(v.variant().passes())
                    .append("`, one folder per size and batch (they need static shapes: `static-shapes` pins the denoiser's"
                            + " batch, height and width to the cell's first)\n");
            for (Cell c : v.cells()) {
                VariantFolders.Prepared p = c.prepared();
                if (p == null) {
                    continue;
                }
                md.append("  - ").append(c.size()).append(" batch ").append(c.batch()).append(": `")
                        .append(p.folder().getFileName()).append("` ").append(p.cache());
                passNotes(md, p.passes());
                md.append('\n');
            }
        }
        return md.toString();
    }

    /** Per pass: matched, nodes; the variant's own passes that changed nothing are flagged. */
    private static void passNotes(StringBuilder md, List<VariantFolders.PassSummary> passes) {
        for (VariantFolders.PassSummary p : passes) {
            if (p.pass().equals("static-shapes")) {
                md.append(String.format(Locale.ROOT, "; static-shapes pinned %d dimensions", p.matched()));
                continue;
            }
            md.append(String.format(Locale.ROOT, "; %s matched %d, %d → %d nodes", p.pass(), p.matched(),
                    p.nodesBefore(), p.nodesAfter()));
            if (p.matched() == 0 && p.changes() == 0) {
                md.append(" (**changed nothing** at this model)");
            }
        }
        List<VariantFolders.PassSummary> own = passes.stream().filter(p -> !p.pass().equals("static-shapes")).toList();
        if (!own.isEmpty() && own.stream().allMatch(p -> p.matched() == 0 && p.changes() == 0)) {
            md.append(" — no pass changed the graph: its denoiser is the exported one")
                    .append(own.size() < passes.size() ? " (with pinned shapes)" : "");
        }
    }

    private static String db(double v) {
        if (Double.isInfinite(v)) {
            return "∞";
        }
        return Double.isNaN(v) ? "NaN" : String.format(Locale.ROOT, "%.1f dB", v);
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    private static String escape(String s) {
        return s.replace("|", "\\|").replace("\n", " ");
    }

    // ======================= JSON =======================

    public static String json(BenchResult r) {
        BenchSettings s = r.settings();
        JsonObject root = new JsonObject();
        root.addProperty("format", JSON_FORMAT);
        root.addProperty("command", s.commandLine());
        root.addProperty("started", r.started().toString());
        root.addProperty("seconds", r.seconds());
        JsonObject env = new JsonObject();
        r.environment().forEach(env::addProperty);
        root.add("environment", env);

        JsonObject settings = new JsonObject();
        settings.addProperty("model", s.source());
        settings.addProperty("model_folder", s.model().toAbsolutePath().toString());
        settings.addProperty("backend", s.backend());
        settings.addProperty("baseline", s.baseline());
        JsonArray sizes = new JsonArray();
        for (Size size : s.sizes()) {
            sizes.add(size.toString());
        }
        settings.add("sizes", sizes);
        JsonArray batches = new JsonArray();
        s.batches().forEach(batches::add);
        settings.add("batches", batches);
        settings.addProperty("steps", s.steps());
        settings.addProperty("warmup_runs", s.warmup());
        settings.addProperty("timed_runs", s.runs());
        settings.addProperty("seed", s.seed());
        settings.addProperty("prompt", s.prompt());
        settings.addProperty("guidance_scale", s.guidance());
        settings.addProperty("scheduler", s.scheduler());
        settings.addProperty("threads", s.threads());
        settings.addProperty("scales", s.scales() == null ? null : s.scales().toAbsolutePath().toString());
        root.add("settings", settings);

        JsonArray variants = new JsonArray();
        for (VariantResult v : r.variants()) {
            JsonObject o = new JsonObject();
            o.addProperty("name", v.variant().name());
            JsonArray parts = new JsonArray();
            v.variant().parts().forEach(parts::add);
            o.add("parts", parts);
            o.addProperty("passes", v.variant().passes());
            o.addProperty("baseline", v.variant().name().equals(s.baseline()));
            o.addProperty("status", v.status());
            o.addProperty("reason", v.reason());
            o.addProperty("cache", v.cache());
            o.addProperty("folder", v.folder() == null ? null : v.folder().toAbsolutePath().toString());
            o.addProperty("prepare_ms", v.prepareMs());
            o.addProperty("per_cell", v.variant().perCell());
            o.add("pass_results", passResults(v.passes()));
            JsonArray cells = new JsonArray();
            for (Cell c : v.cells()) {
                cells.add(cell(c));
            }
            o.add("cells", cells);
            variants.add(o);
        }
        root.add("variants", variants);
        return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls().create().toJson(root) + "\n";
    }

    private static JsonArray passResults(List<VariantFolders.PassSummary> summaries) {
        JsonArray passes = new JsonArray();
        for (VariantFolders.PassSummary p : summaries) {
            JsonObject po = new JsonObject();
            po.addProperty("pass", p.pass());
            po.addProperty("matched", p.matched());
            po.addProperty("changes", p.changes());
            po.addProperty("nodes_before", p.nodesBefore());
            po.addProperty("nodes_after", p.nodesAfter());
            JsonArray notes = new JsonArray();
            p.notes().forEach(notes::add);
            po.add("notes", notes);
            passes.add(po);
        }
        return passes;
    }

    private static JsonObject cell(Cell c) {
        JsonObject o = new JsonObject();
        o.addProperty("width", c.size().width());
        o.addProperty("height", c.size().height());
        o.addProperty("batch", c.batch());
        o.addProperty("status", c.status().name().toLowerCase(Locale.ROOT));
        o.addProperty("reason", c.reason());
        if (c.prepared() != null) {
            VariantFolders.Prepared p = c.prepared();
            o.addProperty("folder", p.folder().toAbsolutePath().toString());
            o.addProperty("cache", p.cache());
            o.addProperty("prepare_ms", p.millis());
            o.add("pass_results", passResults(p.passes()));
        }
        if (!c.ok()) {
            return o;
        }
        o.add("run_ms", array(c.runMs()));
        o.add("unet_ms_per_step", array(c.unetMsPerStep()));
        o.add("text_encoder_ms", array(c.textEncoderMs()));
        o.add("vae_decoder_ms", array(c.vaeDecoderMs()));
        o.add("seconds_per_image", stats(c.secondsPerImage()));
        o.add("unet_ms_per_step_stats", stats(c.unetStep()));
        o.add("speedup_pct", number(c.speedupPct()));
        JsonObject mem = new JsonObject();
        mem.add("peak_rss_bytes", c.peakRssBytes() == null ? JsonNull.INSTANCE : new JsonPrimitive(c.peakRssBytes()));
        mem.add("rss_delta_bytes", c.rssDeltaBytes() == null ? JsonNull.INSTANCE : new JsonPrimitive(c.rssDeltaBytes()));
        mem.addProperty("method", c.memoryMethod());
        if (c.deviceMemoryBytes() == null) {
            mem.addProperty("device", DEVICE_MEMORY_CPU);
        } else {
            mem.addProperty("device_bytes", c.deviceMemoryBytes());
        }
        o.add("memory", mem);
        if (c.fidelity() == null) {
            o.add("fidelity", JsonNull.INSTANCE);
        } else {
            FidelityReport f = c.fidelity();
            JsonObject fo = new JsonObject();
            fo.add("latent_cosine", number(f.latentCosine()));
            fo.add("latent_psnr_db", number(f.latentPsnr()));
            fo.addProperty("latents_identical", Double.isInfinite(f.latentPsnr()));
            fo.add("image_cosine", number(f.imageCosine()));
            fo.add("image_psnr_db", number(f.imagePsnr()));
            fo.addProperty("images_identical", Double.isInfinite(f.imagePsnr()));
            o.add("fidelity", fo);
        }
        return o;
    }

    private static JsonObject stats(Stats s) {
        JsonObject o = new JsonObject();
        o.addProperty("median", s.median());
        o.addProperty("min", s.min());
        o.addProperty("max", s.max());
        o.addProperty("q1", s.q1());
        o.addProperty("q3", s.q3());
        o.addProperty("mean", s.mean());
        o.addProperty("count", s.count());
        return o;
    }

    private static JsonArray array(double[] values) {
        JsonArray a = new JsonArray();
        for (double v : values) {
            a.add(v);
        }
        return a;
    }

    /** A finite number, or null (JSON has no infinity or NaN; PSNR ∞ is flagged as "identical" beside it). */
    private static JsonElement number(Double v) {
        return v == null || !Double.isFinite(v) ? JsonNull.INSTANCE : new JsonPrimitive(v);
    }
}
