package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.exportRandomPipeline;
import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.loop.DenoisingLoop;
import dev.sdrt.runtime.loop.LoopModel;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device-side denoising loop (one upload, every step queued, one read-back) run on the CPU loop
 * device: it must give what the host loop gives, waiting once per batch, with and without replay.
 */
class DeviceLoopTest {
    @TempDir
    static Path tmp;
    static Path sd;
    static Path sdxl;
    static Path sd3;

    @BeforeAll
    static void exportPipelines() {
        sd = exportRandomPipeline(tmp, "tiny", "--seed", "2", "--deepcache-branch", "0");
        sdxl = exportRandomPipeline(tmp, "tiny-sdxl", "--seed", "2");
        sd3 = exportRandomPipeline(tmp, "tiny-sd3", "--seed", "2");
    }

    /** Host loop and device loop on the same request; the device waits once for the batch. */
    private static void assertSameOnDevice(Path folder, GenerationRequest request, boolean replay) throws Exception {
        GeneratedImage host;
        try (Pipeline p = Pipeline.open(folder, 1)) {
            host = p.generate(request, (d, t) -> { });
        }
        try (CpuLoopDevice device = new CpuLoopDevice(1); Pipeline p = Pipeline.openOnDevice(folder, 1, 4, device, replay)) {
            for (int run = 0; run < 2; run++) {
                long before = device.synchronizations();
                GeneratedImage onDevice = p.generate(request, (d, t) -> { });
                assertThat(device.synchronizations() - before).as("waits per batch").isEqualTo(1);
                assertClose(onDevice.latents().toFloatArray(), host.latents().toFloatArray(), folder + " " + request.scheduler());
                for (int i = 0; i < host.count(); i++) {
                    assertBytesClose(onDevice.rgb()[i], host.rgb()[i]);
                }
                assertThat(onDevice.parameters().get("software")).contains("device loop");
            }
        }
    }

    @Test
    void everySchedulerMatchesTheHostLoop() throws Exception {
        for (String scheduler : List.of("euler", "euler-a", "ddim", "dpm++2m", "dpm++2m-karras")) {
            assertSameOnDevice(sd, GenerationRequest.of("a fox").withSteps(4).withSeed(3).withScheduler(scheduler), false);
        }
        assertSameOnDevice(sd, GenerationRequest.of("a fox").withSteps(3).withGuidanceScale(1), false);
        // as many images as steps: the deterministic step's zero noise ([images, ...]) must not be taken for a per-step table
        assertSameOnDevice(sd, GenerationRequest.of("a fox").withSteps(2).withBatchSize(2), false);
    }

    @Test
    void sdxlSd3BatchesImageToImageAndDeepCacheMatchTheHostLoop() throws Exception {
        assertSameOnDevice(sdxl, GenerationRequest.of("a castle").withSteps(3).withBatchSize(2), true);
        assertSameOnDevice(sd3, GenerationRequest.of("a boat").withSteps(3).withNegativePrompt("fog"), true);
        byte[] rgb = new byte[32 * 32 * 3];
        new Random(1).nextBytes(rgb);
        assertSameOnDevice(sd, GenerationRequest.of("a house").withSteps(6).withScheduler("dpm++2m")
                .withInitImage(new RgbImage(32, 32, rgb), 0.5), true);
        assertSameOnDevice(sd, GenerationRequest.of("a tree").withSteps(6).withDeepCache(3, false), true);
    }

    @Test
    void replayReadsTheNewRequestsData() throws Exception {
        PipelineSpec spec = PipelineSpec.read(sd);
        try (CpuLoopDevice device = new CpuLoopDevice(1);
                LoopModel unet = device.load(sd.resolve(spec.unet));
                LoopModel step = device.load(sd.resolve(spec.schedulerStepGuided));
                LoopModel vae = device.load(sd.resolve(spec.vaeDecoder));
                DenoisingLoop loop = new DenoisingLoop(device, new DenoisingLoop.Models(unet, "sample", "out_sample", step, vae,
                        null, null), true)) {
            SchedulePlan plan = Schedulers.create("euler", SchedulerConfig.stableDiffusion()).plan(3);
            long[] latentShape = {1, 4, 16, 16};
            Random random = new Random(5);
            DenoisingLoop.Result first = loop.run(request(plan, latentShape, random));
            DenoisingLoop.Result second = loop.run(request(plan, latentShape, random));
            assertThat(first.replayed()).isFalse();
            assertThat(second.replayed()).as("captured on the first request, replayed on the second").isTrue();
            assertThat(second.synchronizations()).isEqualTo(1);
            assertThat(second.latents().toFloatArray()).as("a replay must read the new upload")
                    .isNotEqualTo(first.latents().toFloatArray());

            try (DenoisingLoop eager = new DenoisingLoop(device, new DenoisingLoop.Models(unet, "sample", "out_sample", step, vae,
                    null, null), false)) {
                DenoisingLoop.Request again = request(plan, latentShape, new Random(5));
                assertClose(eager.run(again).latents().toFloatArray(), first.latents().toFloatArray(), "eager vs captured");
            }
        }
    }

    @Test
    void refusesWhatItCannotRun() throws Exception {
        PipelineSpec spec = PipelineSpec.read(sd);
        try (CpuLoopDevice device = new CpuLoopDevice(1);
                LoopModel step = device.load(sd.resolve(spec.schedulerStepGuided));
                LoopModel vae = device.load(sd.resolve(spec.vaeDecoder))) {
            assertThatThrownBy(() -> new DenoisingLoop(device, new DenoisingLoop.Models(step, "sample", "out_sample", step, vae,
                    null, null), false)).hasMessageContaining("no input 'timestep'");
        }
        PipelineSpec old = PipelineSpec.read(sd3);
        String saved = old.schedulerStep;
        old.schedulerStep = null;
        old.write(sd3);
        try (CpuLoopDevice device = new CpuLoopDevice(1)) {
            assertThatThrownBy(() -> Pipeline.openOnDevice(sd3, 1, 4, device, false)).hasMessageContaining("re-export");
        } finally {
            old.schedulerStep = saved;
            old.write(sd3);
        }
    }

    private static DenoisingLoop.Request request(SchedulePlan plan, long[] latentShape, Random random) {
        int n = (int) Tensor.numElements(latentShape);
        float[] latents = new float[n];
        for (int i = 0; i < n; i++) {
            latents[i] = (float) (random.nextGaussian() * plan.initNoiseSigma());
        }
        float[] context = new float[2 * 77 * 32];
        for (int i = 0; i < context.length; i++) {
            context[i] = (float) random.nextGaussian();
        }
        return new DenoisingLoop.Request(plan, 7.5, latentShape, new long[] {1, 3, 32, 32}, latents,
                Map.of("encoder_hidden_states", Tensor.ofFloats(new long[] {2, 77, 32}, context)), null, null, 0.18215, 0);
    }

    private static void assertClose(float[] actual, float[] expected, String what) {
        assertThat(actual).hasSameSizeAs(expected);
        double maxRef = 0;
        double maxDiff = 0;
        for (int i = 0; i < expected.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
            maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
        }
        assertThat(maxDiff / maxRef).as(what).isLessThan(1e-4);
    }

    private static void assertBytesClose(byte[] actual, byte[] expected) {
        for (int i = 0; i < expected.length; i++) {
            assertThat(Math.abs((actual[i] & 0xff) - (expected[i] & 0xff))).isLessThanOrEqualTo(1);
        }
    }
}
