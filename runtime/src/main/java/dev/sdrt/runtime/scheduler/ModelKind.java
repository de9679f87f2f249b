package dev.sdrt.runtime.scheduler;

/**
 * What a denoiser was trained to predict, which decides the schedulers that can sample it: a
 * scheduler of the other kind runs without error but turns the predictions into noise.
 */
public enum ModelKind {
    /** Noise (ε) or v on a variance-preserving diffusion: SD 1.x/2.x, SDXL. */
    DIFFUSION("noise- or v-prediction"),
    /** A velocity on a rectified flow: SD3. */
    FLOW_MATCHING("flow-matching");

    private final String description;

    ModelKind(String description) {
        this.description = description;
    }

    /** Words for messages, e.g. "flow-matching". */
    public String description() {
        return description;
    }
}
