package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.scheduler.ModelKind;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * How a pipeline's components are wired: which text encoders feed the denoiser, under which input
 * names, what its denoiser predicts (which decides the schedulers that fit it), and which scheduler
 * it samples with unless a request names another.
 */
public enum PipelineFamily {
    /** SD 1.x/2.x: one CLIP text encoder, UNet. */
    SD("sd", "sample", "out_sample", ModelKind.DIFFUSION, "euler"),
    /** SDXL: two CLIP text encoders (penultimate states side by side, pooled projection, size ids), UNet. */
    SDXL("sdxl", "sample", "out_sample", ModelKind.DIFFUSION, "euler"),
    /** SD3: two CLIP text encoders (T5 absent: zero tokens), MMDiT transformer, rectified flow. */
    SD3("sd3", "hidden_states", "sample", ModelKind.FLOW_MATCHING, "flow-euler");

    private final String id;
    private final String sampleInput;
    private final String output;
    private final ModelKind modelKind;
    private final String defaultScheduler;

    PipelineFamily(String id, String sampleInput, String output, ModelKind modelKind, String defaultScheduler) {
        this.id = id;
        this.sampleInput = sampleInput;
        this.output = output;
        this.modelKind = modelKind;
        this.defaultScheduler = defaultScheduler;
    }

    public String id() {
        return id;
    }

    /** The denoiser's input for the (scaled) latents. */
    public String sampleInput() {
        return sampleInput;
    }

    /** The denoiser's prediction output. */
    public String output() {
        return output;
    }

    /** What the denoiser predicts: only schedulers of this kind can sample it. */
    public ModelKind modelKind() {
        return modelKind;
    }

    public String defaultScheduler() {
        return defaultScheduler;
    }

    /** Whether the denoiser is a UNet, which DeepCache can split. */
    public boolean hasUnet() {
        return this != SD3;
    }

    public static PipelineFamily of(String id) {
        for (PipelineFamily f : values()) {
            if (f.id.equals(id)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unsupported pipeline family '" + id + "' (known: "
                + Arrays.stream(values()).map(PipelineFamily::id).collect(Collectors.joining(", ")) + ")");
    }
}
