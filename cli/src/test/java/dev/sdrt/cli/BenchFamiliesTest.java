package dev.sdrt.cli;

import static dev.sdrt.cli.BenchCommandTest.json;
import static dev.sdrt.cli.BenchCommandTest.onlyCell;
import static dev.sdrt.cli.BenchCommandTest.variant;
import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sdrt bench} on SDXL and SD3 pipelines: the denoiser (UNet or transformer) is what the variants rewrite. */
class BenchFamiliesTest {
    @TempDir
    static Path tmp;

    static CliTest.Result bench(String arch, String variants, Path out) {
        return sdrt("bench", "--arch", arch, "--sizes", "32", "--batch", "1", "--steps", "2", "--runs", "1", "--warmup", "0",
                "--variants", variants, "--out", out.toString());
    }

    @Test
    void sdxlVariantsRunOnItsUnet() throws Exception {
        Path out = tmp.resolve("sdxl");
        List<String> names = List.of("fp32", "fp32+fuse-qkv", "fp32+tome:0.5:max_downsample=2", "fp32+deepcache:2");
        CliTest.Result r = bench("tiny-sdxl", String.join(",", names), out);

        assertThat(r.code()).as(r.err()).isZero();
        JsonObject json = json(out);
        assertThat(json.getAsJsonObject("settings").get("scheduler").getAsString()).isEqualTo("euler");
        assertAllRanWithPositiveNumbers(json, names);
        assertExact(json, "fp32+fuse-qkv");
        JsonObject tome = onlyCell(variant(json, "fp32+tome:0.5:max_downsample=2"));
        JsonObject merged = tome.getAsJsonArray("pass_results").get(1).getAsJsonObject();
        assertThat(merged.get("pass").getAsString()).isEqualTo("tome");
        assertThat(merged.get("matched").getAsInt()).as("SDXL's self-attentions sit one level down").isPositive();
        assertThat(Files.readString(out.resolve("bench.md"))).contains("2 steps, euler scheduler");
    }

    @Test
    void sd3VariantsRunOnItsTransformerAndDeepCacheFailsWithItsReason() throws Exception {
        Path out = tmp.resolve("sd3");
        List<String> names = List.of("fp32", "fp32+fuse-qkv", "fp32+channels-last", "fp32+tome:0.5", "fp32+deepcache:2");
        CliTest.Result r = bench("tiny-sd3", String.join(",", names), out);

        assertThat(r.code()).as(r.err()).isZero();
        JsonObject json = json(out);
        assertThat(json.getAsJsonObject("settings").get("scheduler").getAsString()).isEqualTo("flow-euler");
        assertThat(json.getAsJsonArray("variants")).hasSize(names.size());
        JsonObject deepCache = variant(json, "fp32+deepcache:2");
        assertThat(deepCache.get("status").getAsString()).isEqualTo("failed");
        assertThat(deepCache.get("reason").getAsString()).contains("splits a UNet").contains("sd3").contains("transformer");
        assertAllRanWithPositiveNumbers(json, names.subList(0, 4));
        assertExact(json, "fp32+fuse-qkv");
        // the transformer's attention is joint: tome runs on the pinned transformer but finds no self-attention
        JsonObject tome = onlyCell(variant(json, "fp32+tome:0.5"));
        assertThat(tome.get("folder").getAsString()).endsWith("@32x32-b2");
        assertThat(tome.getAsJsonArray("pass_results").get(0).getAsJsonObject().get("matched").getAsInt()).isEqualTo(3);
        String md = Files.readString(out.resolve("bench.md"));
        assertThat(md).contains("failed: deepcache:2 splits a UNet").contains("2 steps, flow-euler scheduler");
        assertThat(Files.list(out.resolve("variants")).map(p -> p.getFileName().toString()))
                .contains("fp32+fuse-qkv").noneMatch(n -> n.startsWith("fp32+deepcache"));
    }

    @Test
    void sd3SizesFollowThePatchSize() {
        CliTest.Result r = sdrt("bench", "--arch", "tiny-sd3", "--sizes", "30", "--steps", "1", "--out", tmp.resolve("sizes").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("multiples of 4").contains("VAE scale factor 2").contains("transformer patch size 2");
        assertThat(tmp.resolve("sizes").resolve("model-tiny-sd3-seed0")).doesNotExist();
    }

    private static void assertAllRanWithPositiveNumbers(JsonObject json, List<String> names) {
        for (String name : names) {
            JsonObject v = variant(json, name);
            assertThat(v.get("status").getAsString()).as(name + ": " + v.get("reason")).isEqualTo("ok");
            JsonObject cell = onlyCell(v);
            assertThat(cell.get("status").getAsString()).as(name).isEqualTo("ok");
            for (JsonElement ms : cell.getAsJsonArray("run_ms")) {
                assertThat(ms.getAsDouble()).as(name).isPositive();
            }
            assertThat(cell.getAsJsonObject("seconds_per_image").get("median").getAsDouble()).as(name).isPositive();
            assertThat(cell.getAsJsonObject("unet_ms_per_step_stats").get("median").getAsDouble()).as(name).isPositive();
        }
    }

    private static void assertExact(JsonObject json, String name) {
        JsonObject fidelity = onlyCell(variant(json, name)).getAsJsonObject("fidelity");
        assertThat(fidelity.get("latent_cosine").getAsDouble()).as(name).isGreaterThanOrEqualTo(0.9999);
        assertThat(fidelity.get("image_cosine").getAsDouble()).as(name).isGreaterThanOrEqualTo(0.9999);
    }
}
