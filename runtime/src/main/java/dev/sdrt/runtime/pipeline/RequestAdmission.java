package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.image.RgbImage;
import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.scheduler.Schedulers;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;

/**
 * What a pipeline checks before it takes a request on, on the submitting thread: the defaults
 * filled in (scheduler, size) and every reason the folder cannot serve it (size, DeepCache, image
 * to image, initial latents, memory), so that a request fails at submit time rather than in a batch.
 */
final class RequestAdmission {
    private final PipelineSpec spec;
    private final PipelineFamily family;
    private final SchedulerConfig schedulerConfig;
    /** Null when the folder has no VAE encoder (text to image only). */
    private final OrtRunner vaeEncoder;
    private final DenoiseStage stage;

    RequestAdmission(PipelineParts parts) {
        this.spec = parts.spec();
        this.family = parts.family();
        this.schedulerConfig = parts.schedulerConfig();
        this.vaeEncoder = parts.vaeEncoder();
        this.stage = parts.stage();
    }

    /** The request with its defaults filled in, once this pipeline can serve it. */
    GenerationRequest admit(GenerationRequest request) {
        GenerationRequest resolved = resolve(request);
        checkServable(resolved);
        return resolved;
    }

    /** Fills in the defaults: the family's scheduler, the initial image's or the pipeline's size. */
    private GenerationRequest resolve(GenerationRequest r) {
        RgbImage init = r.initImage();
        int width = r.width() != 0 ? r.width() : init != null ? init.width() : spec.defaultWidth;
        int height = r.height() != 0 ? r.height() : init != null ? init.height() : spec.defaultHeight;
        String sizeProblem = spec.sizeProblem(width, height);
        if (sizeProblem != null) {
            throw new IllegalArgumentException(sizeProblem);
        }
        String scheduler = r.scheduler() != null ? r.scheduler() : family.defaultScheduler();
        Schedulers.create(scheduler, schedulerConfig, family.modelKind());
        return r.withSize(width, height).withScheduler(scheduler);
    }

    /** Fails early, at submit time, for requests this folder cannot serve. */
    private void checkServable(GenerationRequest r) {
        if (r.deepCacheInterval() > 1 && !stage.hasFeatureCache()) {
            throw new IllegalArgumentException(family.hasUnet()
                    ? "this pipeline has no DeepCache graphs; export it with 'sdrt export-pipeline ... --deepcache-branch 0'"
                            + " to use a cache interval"
                    : "DeepCache needs a UNet; " + family.id() + " pipelines have a transformer");
        }
        if (r.initImage() != null) {
            if (vaeEncoder == null) {
                throw new IllegalArgumentException("this pipeline folder has no VAE encoder, which image to image needs;"
                        + " re-export it with 'sdrt export-pipeline'");
            }
            SchedulePlan.img2imgStart(r.steps(), r.strength());
        }
        if (r.initialLatents() != null) {
            long[] expected = {r.batchSize(), spec.latentChannels, r.height() / spec.vaeScaleFactor, r.width() / spec.vaeScaleFactor};
            if (!Arrays.equals(r.initialLatents().shape(), expected)) {
                throw new IllegalArgumentException("initial latents are " + Tensor.formatShape(r.initialLatents().shape())
                        + " but a batch of " + r.batchSize() + " at " + r.width() + "x" + r.height() + " starts from "
                        + Tensor.formatShape(expected) + " ([batch, latent channels, height / " + spec.vaeScaleFactor
                        + ", width / " + spec.vaeScaleFactor + "])");
            }
        }
        checkMemory(r);
    }

    /**
     * Refuses a request whose largest attention score matrix alone is larger than this machine's
     * memory: ONNX Runtime would fail to allocate it well into the run (the tiny UNet attends over
     * every latent pixel, so 512x512 asks it for 2 × 8 heads × 65,536² scores, 256 GiB).
     */
    private void checkMemory(GenerationRequest r) {
        long memory = physicalMemory();
        PipelineSpec.AttentionScores scores = attentionScores(r, r.width(), r.height());
        if (scores == null || scores.bytes() <= memory) {
            return;
        }
        int multiple = spec.sizeMultiple();
        int fitting = 0;
        for (int side = multiple; side <= Math.max(r.width(), r.height()); side += multiple) {
            PipelineSpec.AttentionScores at = attentionScores(r, side, side);
            if (at.bytes() > memory) {
                break;
            }
            fitting = side;
        }
        String component = switch (scores.component()) {
            case "denoiser" -> family.hasUnet() ? "UNet" : "transformer";
            case "vae_decoder" -> "VAE decoder";
            default -> "VAE encoder";
        };
        throw new IllegalArgumentException(String.format(Locale.ROOT, "%dx%d needs more memory than this machine has: the %s's"
                + " attention over %,d tokens holds %s of scores at once (batch %d × %d heads × %,d² tokens × %d bytes), and"
                + " the machine has %s; %s", r.width(), r.height(), component, scores.tokens(),
                gib(scores.bytes()), scores.batch(), scores.heads(), scores.tokens(), elementBytes(), gib(memory),
                fitting > 0 ? "the largest square size whose scores fit is " + fitting + "x" + fitting + " (at batch "
                        + r.batchSize() + ")" : "no size fits"));
    }

    /** The request's largest score matrix at {@code width} × {@code height}, among the components ONNX Runtime runs on the host. */
    private PipelineSpec.AttentionScores attentionScores(GenerationRequest r, int width, int height) {
        return spec.largestAttentionScores(width, height, r.batchSize(), r.usesGuidance(), r.initImage() != null,
                elementBytes(), component -> component.equals("vae_encoder") || stage.onHost());
    }

    /** Bytes per score: the denoiser's float type (fp16 exports compute their attention in fp16). */
    private int elementBytes() {
        TensorSpec sample = stage.denoiserInputs().get(family.sampleInput());
        return sample == null ? 4 : sample.dtype().byteSize();
    }

    private static long physicalMemory() {
        return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
                ? os.getTotalMemorySize() : Runtime.getRuntime().maxMemory();
    }

    private static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }
}
