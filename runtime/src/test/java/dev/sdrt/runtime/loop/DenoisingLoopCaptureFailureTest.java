package dev.sdrt.runtime.loop;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A device that refuses to capture (as CUDA does for work it cannot record into a graph): the loop
 * runs that shape eagerly, with the results a replay gives and one wait per batch, and never tries
 * to capture that shape again. On the CPU loop device with the tiny UNet and VAE fixtures and a
 * stand-in step graph ({@link StandInStepGraph}).
 */
class DenoisingLoopCaptureFailureTest {

    private static final long[] LATENTS = {1, 4, 16, 16};

    @TempDir
    Path tmp;

    private final List<LoopModel> loaded = new ArrayList<>();
    private final List<LogRecord> warnings = new ArrayList<>();
    private final Handler collect = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                warnings.add(record);
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeEach
    void listen() {
        Logger.getLogger(DenoisingLoop.class.getName()).addHandler(collect);
    }

    @AfterEach
    void stopListening() {
        Logger.getLogger(DenoisingLoop.class.getName()).removeHandler(collect);
        loaded.forEach(LoopModel::close);
    }

    /** The CPU loop device, except that every capture records the work and then fails, as a refused CUDA graph capture does. */
    private static final class RefusingCaptures extends ForwardingLoopDevice {
        int captures;

        RefusingCaptures() {
            super(new CpuLoopDevice(1));
        }

        @Override
        public Replay capture(Runnable work) {
            captures++;
            delegate.capture(work).close(); // the launches are checked and recorded; ending the capture is what fails
            throw new CaptureFailedException("injected: operation not permitted when stream is capturing",
                    new IllegalStateException("cudaErrorStreamCaptureUnsupported"));
        }

        @Override
        public String toString() {
            return "a device refusing captures";
        }
    }

    private DenoisingLoop loop(LoopDevice device, boolean replay) throws Exception {
        LoopModel unet = load(device, Fixtures.model("tiny_sd_unet").resolve("model.onnx"));
        LoopModel step = load(device, StandInStepGraph.write(tmp.resolve("step.onnx"), LATENTS));
        LoopModel vae = load(device, Fixtures.model("tiny_vae_decoder").resolve("model.onnx"));
        return new DenoisingLoop(device, new DenoisingLoop.Models(unet, "sample", "out_sample", step, vae, null, null), replay);
    }

    private LoopModel load(LoopDevice device, Path model) throws Exception {
        LoopModel m = device.load(model);
        loaded.add(m);
        return m;
    }

    /** A guided request of {@code steps} with fresh noise per step (as ancestral samplers have), drawn from {@code seed}. */
    private static DenoisingLoop.Request request(int steps, long seed) {
        SchedulePlan plan = Schedulers.create("euler-a", SchedulerConfig.stableDiffusion()).plan(steps);
        Random random = new Random(seed);
        int n = Math.toIntExact(Tensor.numElements(LATENTS));
        float[] latents = gaussian(random, n, plan.initNoiseSigma());
        float[] noise = gaussian(random, steps * n, 1);
        Tensor text = Tensor.ofFloats(new long[] {2, 8, 32}, gaussian(random, 2 * 8 * 32, 1));
        return new DenoisingLoop.Request(plan, 7.5, LATENTS, new long[] {1, 3, 32, 32}, latents,
                Map.of("encoder_hidden_states", text), noise, null, 0.18215, 0);
    }

    private static float[] gaussian(Random random, int n, double sigma) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) (random.nextGaussian() * sigma);
        }
        return values;
    }

    @Test
    void aRefusedCaptureRunsEagerlyWithTheResultsOfAReplayAndIsNotTriedAgain() throws Exception {
        List<DenoisingLoop.Request> requests = List.of(request(3, 1), request(3, 2), request(4, 3), request(3, 4));
        List<DenoisingLoop.Result> replayed = new ArrayList<>();
        List<DenoisingLoop.Result> eager = new ArrayList<>();
        try (CpuLoopDevice device = new CpuLoopDevice(1); DenoisingLoop loop = loop(device, true);
                DenoisingLoop eagerLoop = loop(device, false)) {
            for (DenoisingLoop.Request r : requests) {
                replayed.add(loop.run(r));
                eager.add(eagerLoop.run(r));
            }
        }
        assertThat(replayed).extracting(DenoisingLoop.Result::replayed).containsExactly(false, true, false, true);

        try (RefusingCaptures device = new RefusingCaptures(); DenoisingLoop loop = loop(device, true)) {
            int[] capturesAfter = new int[requests.size()];
            for (int i = 0; i < requests.size(); i++) {
                DenoisingLoop.Result r = loop.run(requests.get(i));
                capturesAfter[i] = device.captures;
                assertThat(r.replayed()).isFalse();
                assertThat(r.synchronizations()).as("waits per batch").isEqualTo(1);
                assertThat(r.latents().toFloatArray()).as("request %d against a replay", i)
                        .containsExactly(replayed.get(i).latents().toFloatArray());
                assertThat(r.image().toFloatArray()).containsExactly(replayed.get(i).image().toFloatArray());
                assertThat(r.latents().toFloatArray()).as("request %d against the eager loop", i)
                        .containsExactly(eager.get(i).latents().toFloatArray());
            }
            assertThat(capturesAfter).as("one try per shape: 3 steps, again, 4 steps, 3 steps again").containsExactly(1, 1, 2, 2);
        }
        assertThat(replayed.get(1).latents().toFloatArray()).as("the requests differ")
                .isNotEqualTo(replayed.get(0).latents().toFloatArray());
        assertThat(warnings).as("one warning per shape").hasSize(2);
        assertThat(warnings.get(0).getMessage()).contains("could not capture", "[1, 4, 16, 16] latents in 3 steps",
                "a device refusing captures", "injected", "without replay");
    }

    @Test
    void aShapeWhoseCaptureFailedIsNotCapturedAgainAfterItsWorkspaceWasEvicted() throws Exception {
        try (RefusingCaptures device = new RefusingCaptures(); DenoisingLoop loop = loop(device, true)) {
            loop.run(request(1, 1));
            // four other shapes fill the loop's four workspaces, evicting the first
            for (int steps = 2; steps <= 5; steps++) {
                loop.run(request(steps, steps));
            }
            assertThat(device.captures).isEqualTo(5);
            DenoisingLoop.Result again = loop.run(request(1, 9));
            assertThat(device.captures).as("the first shape, back with new buffers, runs eagerly at once").isEqualTo(5);
            assertThat(again.synchronizations()).isEqualTo(1);
        }
        assertThat(warnings).hasSize(5);
    }
}
