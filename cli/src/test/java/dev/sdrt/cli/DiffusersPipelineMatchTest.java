package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.scheduler.PlanStep;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Whole generations against diffusers: each {@code testdata/pipe_*} fixture is a tiny diffusers
 * pipeline (saved with save_pretrained) and what diffusers v0.31.0 computed from it for one prompt,
 * negative prompt, guidance scale, step count and starting latents (see testdata/README.md and
 * testdata/tools/make_pipeline_fixtures.py). sdrt exports the folder with {@code export-pipeline
 * --from}, runs the same request with the same starting latents, on the host loop and on the CPU loop
 * device, and must land on diffusers' final latents (1e-3 relative) and 8-bit image (±1 level).
 */
class DiffusersPipelineMatchTest {
    /** The fixtures' request (make_pipeline_fixtures.py). */
    static final String PROMPT = "A red fox, in the snow!";
    static final String NEGATIVE = "blurry fog";
    static final double GUIDANCE = 5.0;
    static final int STEPS = 5;
    static final int SIZE = 32;
    static final double STRENGTH = 0.6;
    static final double LATENT_TOLERANCE = 1e-3;

    @TempDir
    static Path tmp;

    private static final Map<String, Path> EXPORTED = new LinkedHashMap<>();
    private static final Map<String, Pipeline> HOST = new LinkedHashMap<>();
    private static final Map<String, Pipeline> DEVICE = new LinkedHashMap<>();
    private static final List<AutoCloseable> OPEN = new ArrayList<>();

    /** The sdrt pipeline folder exported from fixture {@code name}, once per class. */
    static synchronized Path exported(String name) {
        return EXPORTED.computeIfAbsent(name, n -> {
            Path out = tmp.resolve(n);
            CliTest.Result r = sdrt("export-pipeline", "--from", Fixtures.model(n).toString(), "--out", out.toString());
            assertThat(r.code()).as(r.out() + r.err()).isZero();
            return out;
        });
    }

    static synchronized Pipeline pipeline(String name, boolean onDevice) throws Exception {
        Map<String, Pipeline> cache = onDevice ? DEVICE : HOST;
        Pipeline p = cache.get(name);
        if (p == null) {
            if (onDevice) {
                CpuLoopDevice device = new CpuLoopDevice(1);
                p = Pipeline.openOnDevice(exported(name), 1, 1, device, false);
                OPEN.add(p);
                OPEN.add(device);
            } else {
                p = Pipeline.open(exported(name), 1);
                OPEN.add(p);
            }
            cache.put(name, p);
        }
        return p;
    }

    @AfterAll
    static void closeAll() throws Exception {
        for (AutoCloseable c : OPEN) {
            c.close();
        }
    }

    static Path reference(String name, String file) {
        return Fixtures.model(name).resolve("reference").resolve(file + ".npy");
    }

    /** Fixture, sdrt scheduler, file stem of the case, image to image, loop device. */
    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (boolean device : new boolean[] {false, true}) {
            for (String fixture : List.of("pipe_sd15", "pipe_sd2_v", "pipe_sdxl")) {
                for (String s : List.of("ddim", "euler", "dpm++2m", "dpm++2m-karras")) {
                    out.add(Arguments.of(fixture, s, s.replace("+", "p"), false, device));
                }
            }
            for (String fixture : List.of("pipe_sd15", "pipe_sd2_v")) {
                for (String s : List.of("ddim", "euler", "dpm++2m")) {
                    out.add(Arguments.of(fixture, s, "img2img_" + s.replace("+", "p"), true, device));
                }
            }
            out.add(Arguments.of("pipe_sdxl", "euler", "img2img_euler", true, device));
            out.add(Arguments.of("pipe_sd3", "flow-euler", "flow-euler", false, device));
            out.add(Arguments.of("pipe_sd3", "flow-euler", "img2img_flow-euler", true, device));
        }
        return out.stream();
    }

    static GenerationRequest request(String fixture, String scheduler, boolean img2img) throws Exception {
        GenerationRequest r = GenerationRequest.of(PROMPT).withNegativePrompt(NEGATIVE).withGuidanceScale(GUIDANCE)
                .withSteps(STEPS).withSize(SIZE, SIZE).withScheduler(scheduler);
        if (img2img) {
            Tensor pixels = Npy.read(reference(fixture, "in_img2img_image"));
            byte[] rgb = new byte[SIZE * SIZE * 3];
            pixels.buffer().get(rgb);
            return r.withInitImage(new RgbImage(SIZE, SIZE, rgb), STRENGTH)
                    .withInitialLatents(Npy.read(reference(fixture, "in_img2img_noise")));
        }
        return r.withInitialLatents(Npy.read(reference(fixture, "in_latents")));
    }

    @ParameterizedTest(name = "{0} {2} device={4}")
    @MethodSource("cases")
    void matchesDiffusers(String fixture, String scheduler, String stem, boolean img2img, boolean device) throws Exception {
        GeneratedImage image = pipeline(fixture, device).generate(request(fixture, scheduler, img2img), (d, t) -> { });
        assertMatches(image, fixture, stem);
    }

    @Test
    /** No negative prompt: diffusers' negative_prompt=None, which SDXL (force_zeros_for_empty_prompt) turns into zeros. */
    void sdxlZeroesAnAbsentNegativePromptAsDiffusersDoes() throws Exception {
        GenerationRequest r = GenerationRequest.of(PROMPT).withGuidanceScale(GUIDANCE).withSteps(STEPS).withSize(SIZE, SIZE)
                .withScheduler("euler").withInitialLatents(Npy.read(reference("pipe_sdxl", "in_latents")));
        assertMatches(pipeline("pipe_sdxl", false).generate(r, (d, t) -> { }), "pipe_sdxl", "euler_no_negative");
    }

    static void assertMatches(GeneratedImage image, String fixture, String stem) throws Exception {
        float[] expected = Npy.read(reference(fixture, "out_" + stem + "_latents")).toFloatArray();
        float[] actual = image.latents().toFloatArray();
        assertThat(actual).hasSameSizeAs(expected);
        double maxRef = 0;
        double maxDiff = 0;
        for (int i = 0; i < expected.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
            maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
        }
        assertThat(maxDiff / maxRef).as(fixture + " " + stem + ": max |sdrt - diffusers| / max |diffusers| of the latents")
                .isLessThanOrEqualTo(LATENT_TOLERANCE);

        Tensor ref = Npy.read(reference(fixture, "out_" + stem + "_image"));
        byte[] refRgb = new byte[(int) ref.numElements()];
        ByteBuffer buffer = ref.buffer();
        buffer.get(refRgb);
        byte[] ours = image.rgb()[0];
        assertThat(ours).hasSameSizeAs(refRgb);
        int worst = 0;
        for (int i = 0; i < refRgb.length; i++) {
            worst = Math.max(worst, Math.abs((ours[i] & 0xff) - (refRgb[i] & 0xff)));
        }
        assertThat(worst).as(fixture + " " + stem + ": largest 8-bit difference from diffusers' image").isLessThanOrEqualTo(1);
    }

    /** Ancestral Euler's noise is torch's stream, so its per-step σ_up and σ_down are checked instead. */
    @ParameterizedTest
    @MethodSource("ancestralFixtures")
    void ancestralEulerStepsMatchDiffusers(String fixture) throws Exception {
        Path config = exported(fixture).resolve("scheduler/scheduler_config.json");
        SchedulePlan plan = Schedulers.create("euler-a", SchedulerConfig.fromJson(config)).plan(STEPS);
        float[] table = Npy.read(reference(fixture, "euler_a_steps")).toFloatArray();
        assertThat(plan.size()).isEqualTo(table.length / 5);
        for (int i = 0; i < plan.size(); i++) {
            PlanStep step = plan.step(i);
            double[] row = {step.timestep(), step.sigma(), step.sigmaNext(), step.sigmaUp(), step.sigmaDown()};
            String[] names = {"timestep", "sigma", "sigma next", "sigma up", "sigma down"};
            for (int c = 0; c < 5; c++) {
                assertThat(row[c]).as(fixture + " euler-a step " + i + " " + names[c])
                        .isCloseTo(table[i * 5 + c], org.assertj.core.data.Offset.offset(1e-4 * Math.max(1, Math.abs(table[i * 5 + c]))));
            }
        }
    }

    static Stream<String> ancestralFixtures() {
        return Stream.of("pipe_sd15", "pipe_sd2_v");
    }

    @Test
    void initialLatentsOfTheWrongShapeAreRefused() throws Exception {
        Pipeline p = pipeline("pipe_sd15", false);
        GenerationRequest r = GenerationRequest.of(PROMPT).withSteps(2).withSize(SIZE, SIZE)
                .withInitialLatents(Tensor.ofFloats(new long[] {1, 4, 8, 8}, new float[256]));
        assertThatThrownBy(() -> p.generate(r, (d, t) -> { })).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("[1, 4, 16, 16]");
        assertThatThrownBy(() -> GenerationRequest.of(PROMPT).withInitialLatents(Tensor.ofFloats(new long[] {2, 4, 16, 16},
                new float[2048]))).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("batch 1");
    }

    @Test
    void generateTakesInitialLatentsFromAnNpyFile() throws Exception {
        Path png = tmp.resolve("cli.png");
        CliTest.Result r = sdrt("generate", "--model", exported("pipe_sd15").toString(), "--prompt", PROMPT, "--negative",
                NEGATIVE, "--guidance", "5", "--steps", "5", "--size", "32x32", "--scheduler", "euler", "--threads", "1",
                "--init-latents", reference("pipe_sd15", "in_latents").toString(), "--out", png.toString());
        assertThat(r.code()).as(r.out() + r.err()).isZero();
        RgbImage ours = RgbImage.read(png);
        Tensor ref = Npy.read(reference("pipe_sd15", "out_euler_image"));
        byte[] refRgb = new byte[(int) ref.numElements()];
        ref.buffer().get(refRgb);
        int worst = 0;
        for (int i = 0; i < refRgb.length; i++) {
            worst = Math.max(worst, Math.abs((ours.rgb()[i] & 0xff) - (refRgb[i] & 0xff)));
        }
        assertThat(worst).isLessThanOrEqualTo(1);
        assertThat(Files.size(png)).isPositive();
    }
}
