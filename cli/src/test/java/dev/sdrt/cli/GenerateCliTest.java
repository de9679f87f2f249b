package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.StepListener;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.trt.TensorRt;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The main job end to end on the embedded default: a random-weight tiny pipeline, prompt to PNG. */
class GenerateCliTest {
    @TempDir
    static Path tmp;
    static Path pipeline;

    @BeforeAll
    static void exportPipeline() {
        pipeline = tmp.resolve("tiny");
        CliTest.Result r = sdrt("export-pipeline", "--arch", "tiny", "--random-weights", "--seed", "1", "--out", pipeline.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(pipeline.resolve("sdrt-pipeline.json")).exists();
        assertThat(pipeline.resolve("tokenizer/vocab.json")).exists();
    }

    @Test
    void generatesReproduciblePngsWithTheirParameters() throws Exception {
        Path out = tmp.resolve("img.png");
        CliTest.Result r = sdrt("generate", "--model", pipeline.toString(), "--prompt", "a red fox", "--steps", "3", "--seed", "5",
                "--batch", "2", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        Path first = tmp.resolve("img-1.png");
        Path second = tmp.resolve("img-2.png");
        BufferedImage image = ImageIO.read(first.toFile());
        assertThat(image.getWidth()).isEqualTo(32);
        assertThat(image.getHeight()).isEqualTo(32);
        assertThat(new String(Files.readAllBytes(first), java.nio.charset.StandardCharsets.ISO_8859_1)).contains("a red fox");
        assertThat(Files.readAllBytes(first)).isNotEqualTo(Files.readAllBytes(second));

        Path again = tmp.resolve("again.png");
        assertThat(sdrt("generate", "--model", pipeline.toString(), "--prompt", "a red fox", "--steps", "3", "--seed", "5",
                "--out", again.toString()).code()).isZero();
        assertThat(Files.readAllBytes(again)).as("same seed, same image").isEqualTo(Files.readAllBytes(first));
    }

    @Test
    void everySchedulerRunsAndGivesFiniteLatents() throws Exception {
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            for (String scheduler : new String[] {"ddim", "euler", "euler-a", "dpm++2m", "dpm++2m-karras"}) {
                GeneratedImage img = p.generate(GenerationRequest.of("a cat").withSteps(4).withScheduler(scheduler).withSize(48, 32),
                        (d, t) -> { });
                assertThat(img.width()).isEqualTo(48);
                for (float v : img.latents().toFloatArray()) {
                    assertThat(Float.isFinite(v)).as(scheduler).isTrue();
                }
            }
        }
    }

    @Test
    void futuresReportProgressAndCanBeCancelled() throws Exception {
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            AtomicInteger steps = new AtomicInteger();
            GeneratedImage done = p.submit(GenerationRequest.of("x").withSteps(5), (d, t) -> steps.set(d)).get();
            assertThat(steps.get()).isEqualTo(5);
            assertThat(done.timings().steps()).isEqualTo(5);

            CompletableFuture<GeneratedImage> slow = p.submit(GenerationRequest.of("y").withSteps(200), (d, t) -> { });
            slow.cancel(true);
            assertThat(slow).isCancelled();
            // the worker stops at its next step and keeps serving requests
            assertThat(p.submit(GenerationRequest.of("z").withSteps(2), (d, t) -> { }).get().count()).isEqualTo(1);
        }
    }

    @Test
    void queuedCompatibleRequestsShareABatchAndGiveTheSameImagesAsAlone() throws Exception {
        GenerationRequest a = GenerationRequest.of("a boat").withSteps(3).withSeed(1).withScheduler("euler-a");
        GenerationRequest b = GenerationRequest.of("a tree").withSteps(3).withSeed(2).withScheduler("euler-a").withBatchSize(2);
        GeneratedImage aloneA;
        GeneratedImage aloneB;
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            aloneA = p.generate(a, StepListener.NONE);
            aloneB = p.generate(b, StepListener.NONE);
        }
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            // Hold the worker with a first request so the next two queue up together behind it.
            CompletableFuture<GeneratedImage> blocker = p.submit(GenerationRequest.of("x").withSteps(20), StepListener.NONE);
            CompletableFuture<GeneratedImage> fa = p.submit(a, StepListener.NONE);
            CompletableFuture<GeneratedImage> fb = p.submit(b, StepListener.NONE);
            blocker.get();
            GeneratedImage batchedA = fa.get();
            GeneratedImage batchedB = fb.get();
            assertThat(batchedA.timings()).as("ran in one batch").isSameAs(batchedB.timings());
            assertThat(batchedB.count()).isEqualTo(2);
            assertThat(batchedA.latents().toFloatArray()).containsExactly(aloneA.latents().toFloatArray(),
                    org.assertj.core.data.Offset.offset(1e-4f));
            assertThat(batchedB.latents().toFloatArray()).containsExactly(aloneB.latents().toFloatArray(),
                    org.assertj.core.data.Offset.offset(1e-4f));
        }
    }

    @Test
    void deadlinesFailRequestsThatCannotFinishInTime() throws Exception {
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            CompletableFuture<GeneratedImage> late = p.submit(GenerationRequest.of("x").withSteps(500), StepListener.NONE,
                    java.time.Instant.now().plusMillis(300));
            assertThatThrownBy(late::get).hasCauseInstanceOf(java.util.concurrent.TimeoutException.class)
                    .hasMessageContaining("deadline passed");
            CompletableFuture<GeneratedImage> past = p.submit(GenerationRequest.of("x").withSteps(1), StepListener.NONE,
                    java.time.Instant.now().minusSeconds(1));
            assertThatThrownBy(past::get).hasMessageContaining("before the request started");
        }
    }

    @Test
    void deepCacheIsExactAtIntervalOneAndChangesTheResultAboveIt() throws Exception {
        Path cached = tmp.resolve("tiny-deepcache");
        CliTest.Result export = sdrt("export-pipeline", "--arch", "tiny", "--random-weights", "--seed", "1", "--deepcache-branch", "0",
                "--out", cached.toString());
        assertThat(export.code()).as(export.err()).isZero();
        assertThat(export.out()).contains("deepcache");
        GenerationRequest request = GenerationRequest.of("a fox").withSteps(6).withSeed(9);
        float[] plain;
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            plain = p.generate(request, StepListener.NONE).latents().toFloatArray();
        }
        try (Pipeline p = Pipeline.open(cached, 0)) {
            float[] everyStep = p.generate(request.withDeepCache(1, false), StepListener.NONE).latents().toFloatArray();
            assertThat(everyStep).containsExactly(plain);
            GeneratedImage third = p.generate(request.withDeepCache(3, false), StepListener.NONE);
            assertThat(third.parameters()).containsEntry("deepcache", "3 (uniform)");
            float[] cachedLatents = third.latents().toFloatArray();
            assertThat(cachedLatents).isNotEqualTo(plain);
            for (float v : cachedLatents) {
                assertThat(Float.isFinite(v)).isTrue();
            }
            assertThat(p.generate(request.withDeepCache(3, true), StepListener.NONE).parameters())
                    .containsEntry("deepcache", "3 (non-uniform)");
        }
        CliTest.Result noGraphs = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--steps", "4", "--deepcache", "2",
                "--out", tmp.resolve("nodc.png").toString());
        assertThat(noGraphs.code()).isEqualTo(2);
        assertThat(noGraphs.err()).contains("--deepcache-branch");
    }

    @Test
    void demoWritesAPngAndSaysTheWeightsAreRandom() throws Exception {
        Path out = tmp.resolve("demo");
        CliTest.Result r = sdrt("demo", "--out", out.toString(), "--steps", "4");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("RANDOM weights").contains("the image is noise");
        BufferedImage image = ImageIO.read(out.resolve("demo.png").toFile());
        assertThat(image.getWidth()).isEqualTo(64);
    }

    @Test
    void sizeAndBackendOptions() throws Exception {
        Path out = tmp.resolve("sized.png");
        CliTest.Result ok = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--negative", "blur", "--size", "48x16",
                "--steps", "2", "--out", out.toString());
        assertThat(ok.code()).as(ok.err()).isZero();
        assertThat(ImageIO.read(out.toFile()).getWidth()).isEqualTo(48);
        CliTest.Result badSize = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--size", "48by16");
        assertThat(badSize.err()).contains("--size must look like 512x512");
        CliTest.Result graphOnCpu = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--cuda-graph");
        assertThat(graphOnCpu.code()).isEqualTo(2);
        assertThat(graphOnCpu.err()).contains("--cuda-graph needs --backend tensorrt");
        CliTest.Result unknown = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--backend", "cuda");
        assertThat(unknown.err()).contains("unknown backend 'cuda'; backends are cpu, tensorrt and cpu-loop");
    }

    @Test
    void tensorRtWithoutAGpuSaysWhy() {
        assumeFalse(TensorRt.isAvailable(), "this machine has TensorRT; the GPU suite runs the backend");
        Path out = tmp.resolve("trt.png");
        CliTest.Result trt = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--backend", "tensorrt",
                "--out", out.toString());
        assertThat(trt.code()).isEqualTo(1);
        assertThat(trt.err()).contains("--backend tensorrt needs an NVIDIA GPU with TensorRT").contains("--backend cpu");
        assertThat(out).doesNotExist();
    }

    /** The device-loop line's format that scripts parse, and the median of runs it reports (the middle two averaged). */
    @Test
    void runTimingsLineAndMedian() {
        GenerateCommand.RunTimings a = new GenerateCommand.RunTimings(100, 80, 8, 1, 0.5, 1.25, 70, 2);
        GenerateCommand.RunTimings b = new GenerateCommand.RunTimings(300, 60, 6, 2, 1.5, 0.75, 50, 2);
        assertThat(a.deviceLine("device loop")).isEqualTo("device loop: total 100.0 ms (0.050 s/image), loop 80.0 ms"
                + " (8.00 ms/step), syncs 1, upload 0.50 ms, enqueue 1.25 ms, wait 70.0 ms");
        assertThat(GenerateCommand.RunTimings.median(java.util.List.of(a, b)))
                .isEqualTo(new GenerateCommand.RunTimings(200, 70, 7, 1.5, 1, 1, 60, 2));
        assertThat(GenerateCommand.RunTimings.median(java.util.List.of(a, b, a))).isEqualTo(a);
    }

    /** The device loop's CLI path, on the CPU loop device: one wait per batch, host enqueue and wait reported. */
    @Test
    void theDeviceLoopReportsItsSynchronizationsAndHostTimes() throws Exception {
        Path out = tmp.resolve("loop.png");
        CliTest.Result r = sdrt("generate", "--model", pipeline.toString(), "--prompt", "a red fox", "--steps", "3", "--seed", "5",
                "--backend", "cpu-loop", "--cuda-graph", "--repeat", "2", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("run 1/2: total").contains("run 2/2: total").contains("median of runs 2..2: total")
                .contains("syncs 1,").contains("enqueue").contains("wait").contains("replayed CUDA graph");
        Path host = tmp.resolve("host.png");
        assertThat(sdrt("generate", "--model", pipeline.toString(), "--prompt", "a red fox", "--steps", "3", "--seed", "5",
                "--out", host.toString()).code()).isZero();
        BufferedImage a = ImageIO.read(out.toFile());
        BufferedImage b = ImageIO.read(host.toFile());
        for (int y = 0; y < a.getHeight(); y++) {
            for (int x = 0; x < a.getWidth(); x++) {
                for (int shift = 0; shift <= 16; shift += 8) {
                    int da = (a.getRGB(x, y) >> shift) & 0xff;
                    int db = (b.getRGB(x, y) >> shift) & 0xff;
                    assertThat(Math.abs(da - db)).as("device loop vs host loop pixel").isLessThanOrEqualTo(1);
                }
            }
        }
    }

    @Test
    void badRequestsAreRefusedClearly() {
        CliTest.Result size = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--width", "33", "--steps", "1",
                "--out", tmp.resolve("bad.png").toString());
        assertThat(size.code()).isEqualTo(2);
        assertThat(size.err()).contains("multiples of 4");
        CliTest.Result sched = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--scheduler", "plms",
                "--out", tmp.resolve("bad.png").toString());
        assertThat(sched.err()).contains("unknown scheduler 'plms'");
        CliTest.Result noModel = sdrt("generate", "--model", tmp.resolve("nothing").toString(), "--prompt", "x");
        assertThat(noModel.code()).isNotZero();
        assertThat(noModel.err()).contains("sdrt-pipeline.json");
        assertThat(tmp.resolve("bad.png")).doesNotExist();
    }

    @Test
    void sizesThatDoNotFitTheUnetAreRefusedWithTheNearestThatDo() throws Exception {
        // 30x30 passes the VAE's factor 2, but the UNet halves its 15 latent pixels once and cannot meet them again
        CliTest.Result r = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--size", "30x30", "--steps", "1",
                "--out", tmp.resolve("30.png").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("multiples of 4 (VAE scale factor 2 × UNet downsampling 2)").contains("28x28 and 32x32");
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            assertThatThrownBy(() -> p.generate(GenerationRequest.of("x").withSteps(1).withSize(30, 30), StepListener.NONE))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("28x28 and 32x32");
        }
    }

    @Test
    void aSizeWhoseAttentionScoresCannotFitInMemoryIsRefusedBeforeItRuns() {
        // The tiny UNet attends over every latent pixel: at 1024x1024, 262,144 tokens, and with guidance's batch of 2
        // and 8 heads its scores alone take 2 × 8 × 262,144² × 4 bytes = 4 TiB.
        CliTest.Result r = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--size", "1024x1024", "--steps", "1",
                "--out", tmp.resolve("huge.png").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("1024x1024 needs more memory than this machine has")
                .contains("the UNet's attention over 262,144 tokens holds 4096.0 GiB of scores")
                .contains("batch 2 × 8 heads").containsPattern("the largest square size whose scores fit is \\d+x\\d+");
        assertThat(tmp.resolve("huge.png")).doesNotExist();
    }

    @Test
    void aFlowMatchingSchedulerIsRefusedForANoisePredictionModel() throws Exception {
        CliTest.Result r = sdrt("generate", "--model", pipeline.toString(), "--prompt", "x", "--scheduler", "flow-euler",
                "--steps", "1", "--out", tmp.resolve("flow.png").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("'flow-euler' samples flow-matching models")
                .contains("choose one of ddim, euler, euler-a, dpm++2m, dpm++2m-karras");
        assertThat(tmp.resolve("flow.png")).doesNotExist();
        try (Pipeline p = Pipeline.open(pipeline, 0)) {
            GenerationRequest flow = GenerationRequest.of("x").withSteps(1).withScheduler("flow-euler");
            assertThatThrownBy(() -> p.generate(flow, StepListener.NONE)).hasMessageContaining("flow-matching");
            assertThatThrownBy(() -> p.submit(flow, StepListener.NONE)).hasMessageContaining("flow-matching");
        }
    }
}
