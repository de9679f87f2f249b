package dev.sdrt.cli.bench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.enginebuilder.FileHash;
import dev.sdrt.enginebuilder.SdrtVersion;
import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Dim;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import dev.sdrt.graphs.passes.DeepCacheSplitter;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.graphs.passes.PassResult;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * Variant pipeline folders under {@code OUT/variants/}: the baseline's files hard-linked (copied
 * where links fail) and the rewritten denoiser (the UNet, or SD3's transformer). Each folder has a
 * manifest ({@value #MANIFEST}) with the pass spec, the SHA-256 of the source denoiser (and of the
 * scales file) and the sdrt version; a later run whose inputs match reuses the folder without
 * loading or rewriting anything, so it starts timing at once.
 *
 * <p>A {@linkplain Variant#perCell() per-cell} variant (its passes need static shapes) has one
 * folder per cell, {@code VARIANT@WxH-bN} (image size, denoiser batch N: twice the images with
 * guidance): its denoiser's batch, height and width are pinned with {@code static-shapes} to the
 * cell's before its passes run.
 */
final class VariantFolders {
    static final String MANIFEST = "sdrt-bench-variant.json";
    private static final String HASH_CACHE = "source-hashes.json";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls().create();

    /** What a pass did, as the report shows it (kept in the manifest so a reused folder still reports it). */
    record PassSummary(String pass, int matched, int changes, int nodesBefore, int nodesAfter, List<String> notes) {
        static PassSummary of(PassResult r) {
            return new PassSummary(r.pass(), r.matched(), r.changes(), r.nodesBefore(), r.nodesAfter(), r.notes());
        }
    }

    /**
     * A folder ready to open.
     *
     * @param cache "baseline model" (no passes: the model folder itself), "built" or "reused"
     * @param passes every pass that ran, {@code static-shapes} first for a per-cell variant
     */
    record Prepared(Path folder, String cache, List<PassSummary> passes, double millis) {
    }

    /**
     * The shapes a per-cell variant's denoiser is pinned to.
     *
     * @param image the cell's image size
     * @param batch the denoiser's batch: the cell's images, twice that with classifier-free guidance
     * @param latentWidth image width ÷ the VAE scale factor
     * @param latentHeight image height ÷ the VAE scale factor
     */
    record Pin(BenchSettings.Size image, int batch, int latentWidth, int latentHeight) {
        static Pin of(BenchSettings.Size image, int images, double guidance, int vaeScaleFactor) {
            return new Pin(image, guidance > 1 ? 2 * images : images, image.width() / vaeScaleFactor,
                    image.height() / vaeScaleFactor);
        }

        /** The folder suffix: {@code @WxH-bN}. */
        String tag() {
            return "@" + image + "-b" + batch;
        }

        /** As the manifest records it. */
        String describe() {
            return "batch=" + batch + ";height=" + latentHeight + ";width=" + latentWidth;
        }
    }

    private final Path model;
    private final PipelineSpec spec;
    private final Path root;
    private final boolean rebuild;
    private final Path scales;
    private String sourceHash;

    VariantFolders(Path model, PipelineSpec spec, Path root, boolean rebuild, Path scales) {
        this.model = model;
        this.spec = spec;
        this.root = root;
        this.rebuild = rebuild;
        this.scales = scales;
    }

    /** The folder name of a variant: its name with every character outside [A-Za-z0-9._+=-] as '-'. */
    static String folderName(String variant) {
        return variant.replaceAll("[^A-Za-z0-9._+=-]", "-");
    }

    /** The folder of a variant that does not depend on the cell. */
    Prepared prepare(Variant variant) throws IOException {
        return prepare(variant, null);
    }

    /**
     * The folder of {@code variant}; {@code pin} is the cell's shapes for a {@linkplain
     * Variant#perCell() per-cell} variant, null otherwise.
     */
    Prepared prepare(Variant variant, Pin pin) throws IOException {
        long start = System.nanoTime();
        if (variant.passes().isEmpty() && variant.deepCache() <= 1) {
            return new Prepared(model, "baseline model", List.of(), ms(start));
        }
        Path folder = root.resolve(folderName(variant.name()) + (pin == null ? "" : pin.tag()));
        JsonObject wanted = identity(variant, pin);
        if (!rebuild) {
            List<PassSummary> reused = reusable(model, folder, wanted);
            if (reused != null) {
                return new Prepared(folder, "reused", reused, ms(start));
            }
        }
        List<PassSummary> passes = build(variant, pin, folder, wanted);
        return new Prepared(folder, "built", passes, ms(start));
    }

    /** What decides reuse: the variant's pass spec, the pinned shapes, the source denoiser's and scales' hashes, the sdrt version. */
    private JsonObject identity(Variant variant, Pin pin) throws IOException {
        JsonObject id = new JsonObject();
        id.addProperty("variant", variant.name());
        id.addProperty("passes", variant.passes());
        id.addProperty("deepcache", variant.deepCache());
        id.addProperty("pinned_shapes", pin == null ? null : pin.describe());
        id.addProperty("denoiser", spec.denoiser());
        id.addProperty("source_denoiser_sha256", sourceHash());
        id.addProperty("scales_sha256", scales != null && variant.passes().contains("qdq") ? FileHash.sha256(scales) : null);
        id.addProperty("sdrt_version", SdrtVersion.get());
        return id;
    }

    /** Whether a file of the model folder is linked into variant folders (everything but the denoiser and the spec). */
    private boolean linked(String rel) {
        String denoiser = spec.denoiser();
        return !(rel.equals(denoiser) || rel.startsWith(denoiser + ".") || rel.startsWith("unet_deepcache_")
                || rel.equals(PipelineSpec.FILE_NAME)
                || rel.equals(MANIFEST) || rel.equals("sdrt-bench-model.json") || rel.startsWith("variants") || rel.startsWith("bench."));
    }

    /**
     * The pass summaries of a folder whose manifest matches, whose files are all there, and whose
     * linked files are still the model folder's (same file, or same size and modification time);
     * null otherwise.
     */
    private List<PassSummary> reusable(Path model, Path folder, JsonObject wanted) {
        Path manifest = folder.resolve(MANIFEST);
        if (!Files.isRegularFile(manifest)) {
            return null;
        }
        try {
            JsonObject m = JsonParser.parseString(Files.readString(manifest)).getAsJsonObject();
            for (String key : wanted.keySet()) {
                if (!Objects.equals(orNull(wanted.get(key)), orNull(m.get(key)))) {
                    return null;
                }
            }
            for (var f : m.getAsJsonArray("files")) {
                JsonObject file = f.getAsJsonObject();
                Path p = folder.resolve(file.get("name").getAsString());
                if (!Files.isRegularFile(p) || Files.size(p) != file.get("bytes").getAsLong()) {
                    return null;
                }
                String rel = file.get("name").getAsString();
                if (linked(rel) && !sameFile(model.resolve(rel), p)) {
                    return null; // the baseline's text encoder, VAE or tokenizer changed since
                }
            }
            List<PassSummary> passes = new ArrayList<>();
            for (var p : m.getAsJsonArray("pass_results")) {
                passes.add(GSON.fromJson(p, PassSummary.class));
            }
            return passes;
        } catch (IOException | RuntimeException e) {
            return null; // unreadable or from another format: rebuild
        }
    }

    /** Builds into FOLDER.partial, then moves it into place, so an interrupted build is never reused. */
    private List<PassSummary> build(Variant variant, Pin pin, Path folder, JsonObject identity) throws IOException {
        Path partial = folder.resolveSibling(folder.getFileName() + ".partial");
        deleteTree(partial);
        Files.createDirectories(partial);
        Path denoiser = model.resolve(spec.denoiser());
        String denoiserName = denoiser.getFileName().toString();
        List<JsonObject> files = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(model, 2)) {
            for (Path f : walk.filter(Files::isRegularFile).toList()) {
                String rel = model.relativize(f).toString();
                if (!linked(rel)) {
                    continue; // the denoiser (and its external data) is rewritten; the spec is written below
                }
                Path target = partial.resolve(rel);
                Files.createDirectories(target.getParent());
                link(f, target);
            }
        }
        OnnxModel graph = OnnxModel.load(denoiser);
        List<String> specs = new ArrayList<>();
        if (pin != null) {
            String pins = pinSpec(graph, pin);
            if (pins != null) {
                specs.add(pins);
            }
        }
        if (!variant.passes().isEmpty()) {
            specs.add(variant.passes());
        }
        List<PassResult> results = specs.isEmpty() ? List.of() : PassPipeline.parse(String.join(",", specs)).run(graph);
        Path rewritten = partial.resolve(spec.denoiser());
        graph.save(rewritten);
        OnnxChecker.check(rewritten);
        PipelineSpec variantSpec = GSON.fromJson(GSON.toJson(spec), PipelineSpec.class);
        if (variant.deepCache() > 1) {
            // The feature cache needs the variant's own full and shallow UNets, split after its passes.
            DeepCacheSplitter.Split split = DeepCacheSplitter.split(graph, 0);
            variantSpec.deepCacheFull = "unet_deepcache_full.onnx";
            variantSpec.deepCacheShallow = "unet_deepcache_shallow.onnx";
            variantSpec.deepCacheBranch = 0;
            split.full().save(partial.resolve(variantSpec.deepCacheFull));
            split.shallow().save(partial.resolve(variantSpec.deepCacheShallow));
        }
        variantSpec.write(partial);
        List<PassSummary> passes = results.stream().map(PassSummary::of).toList();

        try (Stream<Path> walk = Files.walk(partial, 2)) {
            for (Path f : walk.filter(Files::isRegularFile).sorted().toList()) {
                JsonObject file = new JsonObject();
                file.addProperty("name", partial.relativize(f).toString());
                file.addProperty("bytes", Files.size(f));
                files.add(file);
            }
        }
        JsonObject manifest = identity.deepCopy();
        manifest.addProperty("format", "sdrt-bench-variant-1");
        manifest.addProperty("source_model", model.toAbsolutePath().toString());
        manifest.addProperty("source_denoiser", denoiserName);
        manifest.addProperty("created", Instant.now().toString());
        manifest.add("pass_results", GSON.toJsonTree(passes));
        JsonArray list = new JsonArray();
        files.forEach(list::add);
        manifest.add("files", list);
        Files.writeString(partial.resolve(MANIFEST), GSON.toJson(manifest));

        deleteTree(folder);
        Files.move(partial, folder, StandardCopyOption.ATOMIC_MOVE);
        return passes;
    }

    /**
     * The {@code static-shapes} spec pinning the symbolic batch, height and width of the
     * denoiser's latent input ([batch, channels, height, width]) by whatever names they carry;
     * null when all three are static already (a graph exported with fixed shapes).
     */
    private String pinSpec(OnnxModel graph, Pin pin) {
        String input = spec.family().sampleInput();
        Value sample = graph.graph().value(input);
        Shape shape = sample == null || !sample.isGraphInput() ? null : sample.shape();
        if (shape == null || shape.rank() != 4) {
            throw new IllegalArgumentException("the denoiser has no 4-D input " + input + " [batch, channels, height, width]"
                    + " to pin to the cell's shapes");
        }
        long[] sizes = {pin.batch(), -1, pin.latentHeight(), pin.latentWidth()};
        List<String> pins = new ArrayList<>();
        for (int axis : new int[] {0, 2, 3}) {
            Dim d = shape.dim(axis);
            if (d.isFixed()) {
                if (d.value() != sizes[axis]) {
                    throw new IllegalArgumentException("the denoiser's " + input + " is " + shape + ", fixed to another"
                            + " size than this cell's [" + pin.batch() + ", C, " + pin.latentHeight() + ", "
                            + pin.latentWidth() + "]");
                }
            } else if (d.param() != null && !d.param().isEmpty()) {
                String option = d.param() + "=" + sizes[axis];
                if (!pins.contains(option)) {
                    pins.add(option);
                }
            } else {
                throw new IllegalArgumentException("the denoiser's " + input + " " + shape + " has an unnamed dimension,"
                        + " which static-shapes cannot pin");
            }
        }
        return pins.isEmpty() ? null : "static-shapes:" + String.join(":", pins);
    }

    /**
     * SHA-256 over the source denoiser and its external data, remembered in OUT/variants/source-hashes.json
     * by path, size and modification time (a multi-gigabyte UNet is hashed once, not every run).
     */
    private String sourceHash() throws IOException {
        if (sourceHash != null) {
            return sourceHash;
        }
        List<Path> files = new ArrayList<>();
        try (Stream<Path> list = Files.list(model)) {
            list.filter(f -> {
                String n = f.getFileName().toString();
                return Files.isRegularFile(f) && (n.equals(spec.denoiser()) || n.startsWith(spec.denoiser() + "."));
            }).sorted(Comparator.comparing(Path::toString)).forEach(files::add);
        }
        Files.createDirectories(root);
        Path cacheFile = root.resolve(HASH_CACHE);
        JsonObject cache = new JsonObject();
        try {
            if (Files.isRegularFile(cacheFile)) {
                cache = JsonParser.parseString(Files.readString(cacheFile)).getAsJsonObject();
            }
        } catch (IOException | RuntimeException e) {
            cache = new JsonObject();
        }
        StringBuilder all = new StringBuilder();
        boolean changed = false;
        for (Path f : files) {
            String key = f.toAbsolutePath().normalize() + "|" + Files.size(f) + "|" + Files.getLastModifiedTime(f).toMillis();
            String digest = cache.has(key) ? cache.get(key).getAsString() : null;
            if (digest == null) {
                digest = FileHash.sha256(f);
                cache.addProperty(key, digest);
                changed = true;
            }
            all.append(f.getFileName()).append(' ').append(digest).append('\n');
        }
        if (changed) {
            Files.writeString(cacheFile, GSON.toJson(cache));
        }
        sourceHash = files.size() == 1 ? all.toString().split(" ")[1].trim() : FileHash.sha256(all.toString());
        return sourceHash;
    }

    /** JSON null and a missing key read the same. */
    private static JsonElement orNull(JsonElement e) {
        return e == null || e.isJsonNull() ? null : e;
    }

    private static boolean sameFile(Path source, Path copy) throws IOException {
        if (!Files.isRegularFile(source)) {
            return false;
        }
        return Files.isSameFile(source, copy) || (Files.size(source) == Files.size(copy)
                && Files.getLastModifiedTime(source).equals(Files.getLastModifiedTime(copy)));
    }

    private static void link(Path source, Path target) throws IOException {
        try {
            Files.createLink(target, source);
        } catch (FileAlreadyExistsException e) {
            throw e;
        } catch (IOException | UnsupportedOperationException e) {
            // another file system: copy, keeping the modification time that reuse compares
            Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.COPY_ATTRIBUTES);
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static double ms(long start) {
        return (System.nanoTime() - start) / 1e6;
    }
}
