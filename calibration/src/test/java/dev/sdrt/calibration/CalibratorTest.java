package dev.sdrt.calibration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.withinPercentage;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.passes.QdqPass;
import dev.sdrt.graphs.passes.Scales;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.pipeline.Denoiser;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Calibration over the denoising loop of a tiny random-weight pipeline. */
class CalibratorTest {
    @TempDir
    static Path tmp;
    static Path pipeline;
    static final List<String> PROMPTS = List.of("a red fox in the snow", "an isometric city with canals");
    static final Instant CREATED = Instant.parse("2025-01-02T03:04:05Z");
    static final Calibrator.Options OPTIONS = Calibrator.Options.defaults().withSteps(4).withSeed(7).withThreads(2);
    static Calibrator.Run run;

    @BeforeAll
    static void exportAndCalibrate() throws Exception {
        pipeline = TinyPipeline.write(tmp.resolve("tiny"), 1);
        run = Calibrator.calibratePipeline(pipeline, PROMPTS, OPTIONS, null);
    }

    @Test
    void theSameSeedGivesTheSameBytes() throws Exception {
        String first = ScalesFile.toJson(run, PROMPTS.size(), "test", OPTIONS, new CalibrationMethod.Max(), 0.8, CREATED);
        Calibrator.Run again = Calibrator.calibratePipeline(pipeline, PROMPTS, OPTIONS, null);
        String second = ScalesFile.toJson(again, PROMPTS.size(), "test", OPTIONS, new CalibrationMethod.Max(), 0.8, CREATED);
        assertThat(second).isEqualTo(first);

        JsonObject json = JsonParser.parseString(first).getAsJsonObject();
        assertThat(json.get("format").getAsString()).isEqualTo("sdrt-scales-1");
        JsonObject header = json.getAsJsonObject("header");
        assertThat(header.get("model_sha256").getAsString()).hasSize(64);
        assertThat(header.get("prompts").getAsInt()).isEqualTo(2);
        assertThat(header.get("steps").getAsInt()).isEqualTo(4);
        assertThat(header.get("seed").getAsLong()).isEqualTo(7);
        assertThat(header.get("method").getAsString()).isEqualTo("max");
        assertThat(header.get("smoothquant_alpha").getAsDouble()).isEqualTo(0.8);
        assertThat(header.get("created").getAsString()).isEqualTo("2025-01-02T03:04:05Z");
        assertThat(header.get("sdrt_version").getAsString()).isNotEqualTo("unknown");
        assertThat(json.getAsJsonObject("amax").size()).isEqualTo(run.statistics().tensors().size()).isGreaterThan(10);
        assertThat(json.getAsJsonObject("smoothquant").getAsJsonObject("factors").size()).isPositive();

        // What the qdq pass reads back is what calibration computed.
        Scales read = Scales.parse(first, "scales.json");
        CalibrationResult result = CalibrationResult.compute(run.statistics(), run.model().graph(), new CalibrationMethod.Max(), 0.8);
        assertThat(read.amax()).isEqualTo(result.amax());
        Scales.SmoothQuant sq = read.smoothQuant().orElseThrow();
        assertThat(sq.alpha()).isEqualTo(0.8);
        assertThat(sq.amax()).isEqualTo(result.smoothedAmax());
        assertThat(sq.factors().keySet()).isEqualTo(result.smoothing().keySet());
        result.smoothing().forEach((k, f) -> assertThat(sq.factors().get(k)).isEqualTo(f));
        assertThat(read.header().get("tool")).isEqualTo("sdrt calibrate");

        Calibrator.Run otherSeed = Calibrator.calibratePipeline(pipeline, PROMPTS, OPTIONS.withSeed(8), null);
        assertThat(ScalesFile.toJson(otherSeed, PROMPTS.size(), "test", OPTIONS.withSeed(8), new CalibrationMethod.Max(), 0.8,
                CREATED)).isNotEqualTo(first);
    }

    @Test
    void everyMethodStaysAtOrBelowTheMaximum() {
        ActivationStatistics stats = run.statistics();
        assertThat(stats.samples()).isEqualTo(2);
        assertThat(stats.steps()).isEqualTo(4);
        var graph = run.model().graph();
        CalibrationResult max = CalibrationResult.compute(stats, graph, CalibrationMethod.parse("max"), 0.8);
        CalibrationResult p = CalibrationResult.compute(stats, graph, CalibrationMethod.parse("percentile:50"), 0.8);
        CalibrationResult meanMin = CalibrationResult.compute(stats, graph, CalibrationMethod.parse("mean-min"), 0.8);
        int strictlyBelow = 0;
        for (String tensor : max.amax().keySet()) {
            float m = max.amax().get(tensor);
            assertThat(m).as(tensor).isPositive();
            assertThat(p.amax().get(tensor)).as(tensor).isLessThanOrEqualTo(m);
            assertThat(meanMin.amax().get(tensor)).as(tensor).isLessThanOrEqualTo(m);
            if (p.amax().get(tensor) < m) {
                strictlyBelow++;
            }
        }
        assertThat(strictlyBelow).as("activation ranges vary across steps").isPositive();
        for (String tensor : max.smoothedAmax().keySet()) {
            assertThat(p.smoothedAmax().get(tensor)).isLessThanOrEqualTo(max.smoothedAmax().get(tensor));
            assertThat(p.smoothing().get(tensor)).as("factors do not depend on the method").isEqualTo(max.smoothing().get(tensor));
        }
    }

    /**
     * The tapped UNet on the CPU loop device (upload, launch, download per step, as on a GPU) sees
     * what ONNX Runtime sees directly, and the header says which backend ran.
     */
    @Test
    void theCpuLoopDeviceGivesTheScalesOfOnnxRuntime() throws Exception {
        List<Calibrator.DenoiserShapes> opened = new ArrayList<>();
        Calibrator.Run onDevice;
        long waits;
        try (CpuLoopDevice device = new CpuLoopDevice(2)) {
            Calibrator.Backend loop = Calibrator.Backend.onDevice("cpu-loop", device);
            Calibrator.Backend recording = new Calibrator.Backend() {
                @Override
                public String name() {
                    return loop.name();
                }

                @Override
                public Denoiser open(Path tappedOnnx, Calibrator.DenoiserShapes shapes) throws IOException {
                    assertThat(tappedOnnx).exists().hasFileName("tapped.onnx");
                    opened.add(shapes);
                    return loop.open(tappedOnnx, shapes);
                }
            };
            onDevice = Calibrator.calibratePipeline(pipeline, PROMPTS, OPTIONS, recording, null);
            waits = device.synchronizations();
        }
        PipelineSpec spec = PipelineSpec.read(pipeline);
        assertThat(opened).singleElement().satisfies(shapes -> {
            assertThat(shapes.batch()).as("guidance 7.5 runs [uncond; cond]").isEqualTo(2);
            assertThat(shapes.width()).isEqualTo(spec.defaultWidth);
            assertThat(shapes.height()).isEqualTo(spec.defaultHeight);
        });
        assertThat(waits).as("one wait per step").isEqualTo(PROMPTS.size() * OPTIONS.steps());

        CalibrationResult expected = CalibrationResult.compute(run.statistics(), run.model().graph(), new CalibrationMethod.Max(), 0.8);
        CalibrationResult actual = CalibrationResult.compute(onDevice.statistics(), onDevice.model().graph(),
                new CalibrationMethod.Max(), 0.8);
        assertThat(actual.amax().keySet()).containsExactlyElementsOf(expected.amax().keySet()).hasSizeGreaterThan(10);
        expected.amax().forEach((tensor, amax) -> assertThat(actual.amax().get(tensor)).as(tensor)
                .isCloseTo(amax, withinPercentage(1e-3)).isPositive());
        assertThat(actual.smoothing().keySet()).containsExactlyElementsOf(expected.smoothing().keySet()).isNotEmpty();
        expected.smoothing().forEach((tensor, factors) -> {
            float[] got = actual.smoothing().get(tensor);
            assertThat(got).as(tensor).hasSameSizeAs(factors);
            for (int i = 0; i < factors.length; i++) {
                assertThat(got[i]).as(tensor + "[" + i + "]").isCloseTo(factors[i], withinPercentage(1e-3));
            }
        });

        String ortFile = ScalesFile.toJson(run, PROMPTS.size(), "test", OPTIONS, new CalibrationMethod.Max(), 0.8, CREATED);
        String loopFile = ScalesFile.toJson(onDevice, PROMPTS.size(), "test", OPTIONS, new CalibrationMethod.Max(), 0.8, CREATED);
        assertThat(header(ortFile).get("backend").getAsString()).isEqualTo("onnxruntime-cpu");
        assertThat(header(loopFile).get("backend").getAsString()).isEqualTo("cpu-loop");
    }

    private static JsonObject header(String scalesFile) {
        return JsonParser.parseString(scalesFile).getAsJsonObject().getAsJsonObject("header");
    }

    /**
     * Same seed, same prompt (not a calibration prompt): final latents and images of the pipeline
     * with its UNet quantized by the qdq pass (int8, default skip list) against float32. Measured
     * (max, α 0.8, 4 steps): without guidance latents cos 0.9999, image cos 0.9999; with guidance
     * 7.5 latents cos 0.995, image cos 0.998 — guidance multiplies the quantization error of
     * (cond − uncond) by 7.5, and a random-weight text encoder makes that difference small.
     */
    @Test
    void int8PipelineStaysCloseToFloat32() throws Exception {
        CalibrationResult scales = CalibrationResult.compute(run.statistics(), run.model().graph(), new CalibrationMethod.Max(), 0.8);
        Path int8 = Files.createDirectories(tmp.resolve("tiny-int8"));
        try (var files = Files.walk(pipeline)) {
            for (Path f : files.toList()) {
                Path target = int8.resolve(pipeline.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(f, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        OnnxModel unet = OnnxModel.load(int8.resolve("unet.onnx"));
        QdqPass.builder(QdqPass.Mode.INT8).scales(ScalesFile.toScales(scales, Map.of())).build().apply(unet);
        unet.save(int8.resolve("unet.onnx"));
        FidelityReport unguided = compare(int8, 1.0);
        FidelityReport guided = compare(int8, 7.5);
        System.out.println("int8 tiny pipeline (max, alpha 0.8) vs fp32, guidance 1: " + unguided + "; guidance 7.5: " + guided);
        assertThat(unguided.latentCosine()).isGreaterThanOrEqualTo(0.995);
        assertThat(unguided.imageCosine()).isGreaterThanOrEqualTo(0.995);
        assertThat(guided.latentCosine()).isGreaterThanOrEqualTo(0.99);
        assertThat(guided.imageCosine()).isGreaterThanOrEqualTo(0.99);
    }

    private static FidelityReport compare(Path int8, double guidance) throws Exception {
        GenerationRequest request = GenerationRequest.of("a lighthouse at dusk").withSteps(OPTIONS.steps()).withSeed(11)
                .withGuidanceScale(guidance);
        GeneratedImage base;
        GeneratedImage quantized;
        try (Pipeline p = Pipeline.open(pipeline, 2)) {
            base = p.generate(request, (d, t) -> { });
        }
        try (Pipeline p = Pipeline.open(int8, 2)) {
            quantized = p.generate(request, (d, t) -> { });
        }
        return FidelityReport.of(base.latents().toFloatArray(), quantized.latents().toFloatArray(), base.rgb()[0],
                quantized.rgb()[0]);
    }

    @Test
    void clearErrors() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("not-a-pipeline"));
        assertThatThrownBy(() -> Calibrator.calibratePipeline(empty, PROMPTS, OPTIONS, null))
                .isInstanceOf(NoSuchFileException.class).hasMessageContaining("sdrt-pipeline.json")
                .hasMessageContaining("export-pipeline");
        Path prompts = Files.writeString(tmp.resolve("prompts.txt"), "# only a comment\n\n   \n");
        assertThatThrownBy(() -> Prompts.read(prompts)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("holds no prompt");
        assertThatThrownBy(() -> CalibrationMethod.parse("median")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("median").hasMessageContaining("percentile:P").hasMessageContaining("mean-min");
        assertThatThrownBy(() -> CalibrationMethod.parse("percentile:0")).hasMessageContaining("(0, 100]");
        assertThatThrownBy(() -> CalibrationMethod.parse("percentile:abc")).hasMessageContaining("needs a number");
    }
}
