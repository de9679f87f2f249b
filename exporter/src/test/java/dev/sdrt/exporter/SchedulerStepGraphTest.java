package dev.sdrt.exporter;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The device-side step graph, run on ONNX Runtime, follows the host reference step for a whole loop. */
class SchedulerStepGraphTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ddim", "euler", "euler-a", "dpm++2m", "dpm++2m-karras", "flow-euler"})
    void graphStepsMatchTheHostStepsThroughAWholeLoop(String scheduler) throws Exception {
        assertThat(SchedulerStepGraph.COLUMNS).isEqualTo(SchedulePlan.COEFFICIENT_COLUMNS);
        SchedulerConfig config = scheduler.equals("flow-euler") ? SchedulerConfig.stableDiffusion3() : SchedulerConfig.stableDiffusion();
        SchedulePlan plan = Schedulers.create(scheduler, config).plan(8);
        double guidance = 5.0;
        // the last row hands the VAE its input: x / 1.5305 + 0.0609 (SD3's VAE factors)
        float[] table = plan.coefficientTable(guidance, 1 / 1.5305, 0.0609);
        int width = SchedulePlan.COEFFICIENT_COLUMNS.size();

        Path file = tmp.resolve("step.onnx");
        SchedulerStepGraph.build(true).save(file);
        OnnxChecker.check(file);

        long[] shape = {2, 4, 3, 5};
        int n = 2 * 4 * 3 * 5;
        Random random = new Random(11);
        float[] hostSample = randoms(random, n, (float) plan.initNoiseSigma());
        float[] graphSample = hostSample.clone();
        float[] hostPrevious = new float[n];
        float[] graphPrevious = new float[n];
        try (OrtRunner runner = OrtRunner.builder(file).intraOpThreads(1).build()) {
            for (int i = 0; i < plan.size(); i++) {
                float[] modelOutput = randoms(random, 2 * n, 1f); // [uncond; cond], as the UNet returns them
                float[] noise = randoms(random, n, 1f);
                float[] guided = new float[n];
                for (int k = 0; k < n; k++) {
                    guided[k] = (float) (modelOutput[k] + guidance * (modelOutput[n + k] - modelOutput[k]));
                }
                plan.applyStep(i, hostSample, guided, hostPrevious, noise);

                Map<String, Tensor> feeds = new HashMap<>();
                feeds.put("sample", Tensor.ofFloats(shape, graphSample));
                feeds.put("model_output", Tensor.ofFloats(new long[] {4, 4, 3, 5}, modelOutput));
                feeds.put("previous_denoised", Tensor.ofFloats(shape, graphPrevious));
                feeds.put("noise", Tensor.ofFloats(shape, noise));
                feeds.put("coefficients", Tensor.ofFloats(new long[] {width}, Arrays.copyOfRange(table, i * width, (i + 1) * width)));
                Map<String, Tensor> out = runner.run(feeds);
                graphSample = out.get("next_sample").toFloatArray();
                graphPrevious = out.get("denoised").toFloatArray();
                float[] nextInput = out.get("next_model_input").toFloatArray();
                float nextScale = table[i * width + 7];
                float nextShift = table[i * width + 8];
                assertThat(nextShift).isEqualTo(i + 1 == plan.size() ? 0.0609f : 0f);
                assertThat(nextInput[n + 7]).isCloseTo(graphSample[7] * nextScale + nextShift, org.assertj.core.data.Offset.offset(1e-4f));
            }
        }
        double maxRef = 0;
        double maxDiff = 0;
        for (int k = 0; k < n; k++) {
            maxRef = Math.max(maxRef, Math.abs(hostSample[k]));
            maxDiff = Math.max(maxDiff, Math.abs(hostSample[k] - graphSample[k]));
        }
        assertThat(maxDiff / maxRef).as("%s: device-graph loop vs host loop", scheduler).isLessThan(1e-4);
    }

    private static float[] randoms(Random r, int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian() * scale;
        }
        return v;
    }
}
