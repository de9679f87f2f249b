package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.cli.bench.Variant;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.runtime.trt.TensorRt;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sdrt bench} end to end on the tiny random-weight pipeline (ONNX Runtime, CPU). */
class BenchCommandTest {
    @TempDir
    static Path tmp;
    static Path out;
    /** The first run's bench.md, bench.json and bench.png (the reuse test writes over those in {@link #out}). */
    static Path firstOut;
    static CliTest.Result first;
    static double firstSeconds;

    static final String[] QUICK = {"--arch", "tiny", "--backend", "cpu", "--sizes", "32", "--batch", "1", "--steps", "3",
        "--runs", "2", "--warmup", "1"};

    static CliTest.Result bench(Path dir, String... more) {
        List<String> args = new ArrayList<>(List.of("bench"));
        args.addAll(List.of(QUICK));
        args.add("--out");
        args.add(dir.toString());
        args.addAll(List.of(more));
        return sdrt(args.toArray(String[]::new));
    }

    /** The default variants, once; the tests below read its outputs. */
    @BeforeAll
    static void benchTheDefaultVariants() throws Exception {
        out = tmp.resolve("bench");
        long start = System.nanoTime();
        first = bench(out);
        firstSeconds = (System.nanoTime() - start) / 1e9;
        firstOut = Files.createDirectories(tmp.resolve("first"));
        for (String f : new String[] {"bench.md", "bench.json", "bench.png"}) {
            if (Files.exists(out.resolve(f))) {
                Files.copy(out.resolve(f), firstOut.resolve(f));
            }
        }
    }

    static JsonObject json(Path dir) throws Exception {
        return JsonParser.parseString(Files.readString(dir.resolve("bench.json"))).getAsJsonObject();
    }

    static JsonObject variant(JsonObject json, String name) {
        for (JsonElement e : json.getAsJsonArray("variants")) {
            if (e.getAsJsonObject().get("name").getAsString().equals(name)) {
                return e.getAsJsonObject();
            }
        }
        throw new AssertionError("no variant " + name + " in bench.json");
    }

    static JsonObject onlyCell(JsonObject variant) {
        JsonArray cells = variant.getAsJsonArray("cells");
        assertThat(cells).hasSize(1);
        return cells.get(0).getAsJsonObject();
    }

    @Test
    void defaultVariantsFinishQuicklyAndAppearInTableAndJson() throws Exception {
        assertThat(first.code()).as(first.err()).isZero();
        assertThat(firstSeconds).as("seconds for the tiny CPU bench").isLessThan(60);
        List<String> expected = Variant.defaultNames(PassPipeline.registeredPasses());
        String md = Files.readString(firstOut.resolve("bench.md"));
        JsonObject json = json(firstOut);
        assertThat(json.get("format").getAsString()).isEqualTo("sdrt-bench-1");
        assertThat(json.getAsJsonArray("variants")).hasSize(expected.size());
        for (String name : expected) {
            assertThat(md).contains("| `" + name + "` |");
            JsonObject v = variant(json, name);
            if (v.get("status").getAsString().equals("ok")) {
                JsonObject cell = onlyCell(v);
                assertThat(cell.get("status").getAsString()).isEqualTo("ok");
                for (JsonElement ms : cell.getAsJsonArray("run_ms")) {
                    assertThat(ms.getAsDouble()).isPositive();
                }
                assertThat(cell.getAsJsonArray("run_ms")).hasSize(2);
                assertThat(cell.getAsJsonObject("seconds_per_image").get("median").getAsDouble()).isPositive();
                assertThat(cell.getAsJsonObject("seconds_per_image").get("min").getAsDouble()).isPositive();
                assertThat(cell.getAsJsonObject("unet_ms_per_step_stats").get("median").getAsDouble()).isPositive();
                assertThat(cell.getAsJsonObject("memory").get("device").getAsString()).isEqualTo("n/a (cpu)");
            } else {
                assertThat(v.get("reason").getAsString()).isNotBlank();
            }
        }
        // the baseline and the exact variant always run
        assertThat(variant(json, "fp32").get("status").getAsString()).isEqualTo("ok");
        assertThat(variant(json, "fp32+fuse-qkv").get("status").getAsString()).isEqualTo("ok");
        assertThat(first.err()).contains("[1/").contains("fp32 32x32 batch 1:");
    }

    @Test
    void baselineIsZeroPercentAndTheExactVariantMatchesIt() throws Exception {
        JsonObject json = json(firstOut);
        assertThat(json.getAsJsonObject("settings").get("baseline").getAsString()).isEqualTo("fp32");
        JsonObject base = onlyCell(variant(json, "fp32"));
        assertThat(base.get("speedup_pct").getAsDouble()).isEqualTo(0.0);
        assertThat(Files.readString(firstOut.resolve("bench.md"))).containsPattern("\\| `fp32` \\| 32x32 \\| 1 \\| [0-9.]+ \\| [0-9.–]+ \\| 0% ");

        JsonObject fused = onlyCell(variant(json, "fp32+fuse-qkv"));
        JsonObject fidelity = fused.getAsJsonObject("fidelity");
        assertThat(fidelity.get("latent_cosine").getAsDouble()).isGreaterThanOrEqualTo(0.9999);
        assertThat(fidelity.get("image_cosine").getAsDouble()).isGreaterThanOrEqualTo(0.9999);
        assertThat(fused.get("speedup_pct").isJsonNull()).isFalse();
        assertThat(variant(json, "fp32+fuse-qkv").getAsJsonArray("pass_results").get(0).getAsJsonObject().get("matched").getAsInt())
                .isPositive();
    }

    /**
     * tome needs static token counts, which the dynamic export lacks: each cell gets its own folder
     * whose UNet is pinned to the cell's shapes (batch 1 with guidance: the UNet sees 2; 32 pixels:
     * 16 latent pixels), and tome merges there.
     */
    @Test
    void tomeVariantsMergeOnTheUnetPinnedToTheirCell() throws Exception {
        JsonObject json = json(firstOut);
        String md = Files.readString(firstOut.resolve("bench.md"));
        for (String name : new String[] {"fp32+tome:0.3", "fp32+tome:0.5"}) {
            JsonObject v = variant(json, name);
            assertThat(v.get("status").getAsString()).isEqualTo("ok");
            assertThat(v.get("per_cell").getAsBoolean()).isTrue();
            JsonObject cell = onlyCell(v);
            assertThat(cell.get("status").getAsString()).isEqualTo("ok");
            assertThat(cell.get("folder").getAsString()).endsWith("@32x32-b2");
            JsonArray passes = cell.getAsJsonArray("pass_results");
            JsonObject pin = passes.get(0).getAsJsonObject();
            assertThat(pin.get("pass").getAsString()).isEqualTo("static-shapes");
            assertThat(pin.get("notes").getAsJsonArray().get(0).getAsString()).startsWith("pinned batch=2, height=16, width=16");
            JsonObject tome = passes.get(1).getAsJsonObject();
            assertThat(tome.get("pass").getAsString()).isEqualTo("tome");
            assertThat(tome.get("matched").getAsInt()).as(name + " merges").isPositive();
            assertThat(tome.get("nodes_after").getAsInt()).isGreaterThan(tome.get("nodes_before").getAsInt());
            assertThat(tome.get("notes").getAsJsonArray().get(0).getAsString()).contains("(256 → ");
            assertThat(cell.getAsJsonObject("seconds_per_image").get("median").getAsDouble()).isPositive();
            assertThat(cell.get("speedup_pct").isJsonNull()).isFalse();
            double cosine = cell.getAsJsonObject("fidelity").get("latent_cosine").getAsDouble();
            assertThat(cosine).as(name + " approximates the baseline").isBetween(0.5, 0.99999);
            assertThat(md).containsPattern("\\| `" + name.replace("+", "\\+") + "` \\| 32x32 \\| 1 \\| [0-9.]+ \\|.*\\| 0\\.[0-9]{6} \\|");
            assertThat(md).contains("- `" + name + "`: built").contains("32x32 batch 1: `" + name.replace(':', '-') + "@32x32-b2` built;"
                    + " static-shapes pinned 3 dimensions; tome matched");
        }
        assertThat(md).doesNotContain("changed nothing");
    }

    @Test
    void environmentIsRecorded() throws Exception {
        JsonObject env = json(firstOut).getAsJsonObject("environment");
        assertThat(env.get("gpu").getAsString()).isEqualTo("none");
        assertThat(env.get("onnxruntime").getAsString()).matches("\\d+\\.\\d+.*");
        for (String key : new String[] {"os", "cpu", "cores", "java", "sdrt"}) {
            assertThat(env.get(key).getAsString()).as(key).isNotBlank();
        }
    }

    @Test
    void chartIsAPngImageIoReads() throws Exception {
        BufferedImage png = ImageIO.read(firstOut.resolve("bench.png").toFile());
        assertThat(png).isNotNull();
        assertThat(png.getWidth()).isGreaterThan(400);
        assertThat(png.getHeight()).isGreaterThan(300);
    }

    @Test
    void unknownPartFailsAloneAndASecondRunReusesTheVariantFolders() throws Exception {
        CliTest.Result again = bench(out, "--variants", "fp32,fp32+fuse-qkv,fp32+bogus,fp32+deepcache:3,fp32+tome:0.5");
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(again.err()).contains("model: reused").contains("fp32+fuse-qkv: reused variants/fp32+fuse-qkv")
                .contains("fp32+tome:0.5 32x32 batch 1: reused variants/fp32+tome-0.5@32x32-b2");
        JsonObject json = json(out);
        assertThat(json.getAsJsonArray("variants")).hasSize(5);
        assertThat(variant(json, "fp32+tome:0.5").get("cache").getAsString()).isEqualTo("reused");
        assertThat(onlyCell(variant(json, "fp32+tome:0.5")).getAsJsonArray("pass_results").get(1).getAsJsonObject()
                .get("matched").getAsInt()).as("a reused folder reports its passes").isPositive();
        assertThat(variant(json, "fp32+fuse-qkv").get("cache").getAsString()).isEqualTo("reused");
        assertThat(variant(json, "fp32+fuse-qkv").get("status").getAsString()).isEqualTo("ok");
        assertThat(variant(json, "fp32").get("status").getAsString()).isEqualTo("ok");

        JsonObject bogus = variant(json, "fp32+bogus");
        assertThat(bogus.get("status").getAsString()).isEqualTo("failed");
        assertThat(bogus.get("reason").getAsString()).contains("unknown part 'bogus'");
        JsonObject cached = variant(json, "fp32+deepcache:3");
        assertThat(cached.get("status").getAsString()).isEqualTo("ok");
        double cachedCosine = onlyCell(cached).getAsJsonObject("fidelity").get("latent_cosine").getAsDouble();
        assertThat(cachedCosine).as("DeepCache approximates the baseline").isBetween(0.9, 0.99999);

        String md = Files.readString(out.resolve("bench.md"));
        assertThat(md).contains("failed: unknown part 'bogus'").contains("`fp32+fuse-qkv`: reused");
        assertThat(onlyCell(variant(json, "fp32+fuse-qkv")).getAsJsonObject("fidelity").get("latent_cosine").getAsDouble())
                .isGreaterThanOrEqualTo(0.9999);
    }

    @Test
    void withoutAGpuTheTensorRtBackendSaysSoBeforeExportingAnything() {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT");
        CliTest.Result r = sdrt("bench", "--arch", "tiny", "--backend", "tensorrt", "--out", tmp.resolve("trt").toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("--backend tensorrt needs an NVIDIA GPU with TensorRT").contains("--backend cpu runs without one");
        assertThat(tmp.resolve("trt/bench.md")).doesNotExist();
        assertThat(tmp.resolve("trt/model-tiny-seed0")).as("nothing exported").doesNotExist();

        CliTest.Result unguided = sdrt("bench", "--arch", "tiny", "--backend", "tensorrt", "--guidance", "1", "--out",
                tmp.resolve("trt").toString());
        assertThat(unguided.err()).contains("static engines for guided requests").contains("--guidance above 1");
        assertThat(sdrt("bench", "--arch", "tiny", "--backend", "cuda", "--out", tmp.resolve("trt").toString()).err())
                .contains("unknown backend 'cuda'; backends are cpu, tensorrt and cpu-loop");
    }

    /**
     * The device loop that TensorRT runs, here on ONNX Runtime, replayed: every kind of variant runs
     * on it, an exact variant still matches its baseline and the lossy ones stay approximations.
     */
    @Test
    void theDeviceLoopBackendRunsEveryKindOfVariant() throws Exception {
        Path loop = tmp.resolve("loop");
        CliTest.Result r = sdrt("bench", "--arch", "tiny", "--backend", "cpu-loop", "--sizes", "32", "--batch", "1,2",
                "--steps", "3", "--runs", "1", "--warmup", "1", "--variants", "fp32,fp32+fuse-qkv,fp32+tome:0.5,fp32+deepcache:3",
                "--out", loop.toString());
        assertThat(r.code()).as(r.err()).isZero();
        JsonObject json = json(loop);
        assertThat(json.getAsJsonObject("settings").get("backend").getAsString()).isEqualTo("cpu-loop");
        assertThat(json.getAsJsonObject("environment").get("backend").getAsString())
                .isEqualTo("device loop on ONNX Runtime (CPU execution provider), launches replayed");
        for (String name : new String[] {"fp32", "fp32+fuse-qkv", "fp32+tome:0.5", "fp32+deepcache:3"}) {
            JsonObject v = variant(json, name);
            assertThat(v.get("status").getAsString()).as(name).isEqualTo("ok");
            assertThat(v.getAsJsonArray("cells")).hasSize(2);
            for (JsonElement e : v.getAsJsonArray("cells")) {
                JsonObject cell = e.getAsJsonObject();
                assertThat(cell.get("status").getAsString()).as(name).isEqualTo("ok");
                assertThat(cell.getAsJsonObject("unet_ms_per_step_stats").get("median").getAsDouble()).isPositive();
                if (!name.equals("fp32")) {
                    double cosine = cell.getAsJsonObject("fidelity").get("latent_cosine").getAsDouble();
                    if (name.equals("fp32+fuse-qkv")) {
                        assertThat(cosine).as(name).isGreaterThanOrEqualTo(0.9999);
                    } else {
                        assertThat(cosine).as(name).isBetween(0.5, 0.99999);
                    }
                }
            }
        }
        assertThat(Files.readString(loop.resolve("bench.md"))).contains("device loop time ÷ steps");
    }

    @Test
    void sizesThatDoNotFitTheUnetAreRefusedWithTheRule() {
        CliTest.Result r = sdrt("bench", "--arch", "tiny", "--sizes", "32,30", "--steps", "1", "--out", tmp.resolve("sizes").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("multiples of 4").contains("VAE scale factor 2").contains("UNet downsampling 2");
    }

    @Test
    void badOptionsAreRefused() {
        assertThat(bench(tmp.resolve("b1"), "--baseline", "fp16").err()).contains("--baseline fp16 is not one of the variants");
        assertThat(sdrt("bench", "--arch", "sd4", "--out", tmp.resolve("b2").toString()).err())
                .contains("unknown architecture 'sd4'");
        assertThat(bench(tmp.resolve("b3"), "--variants", " , ").err()).contains("names no variant");
    }
}
