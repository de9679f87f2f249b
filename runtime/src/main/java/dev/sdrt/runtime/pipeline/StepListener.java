package dev.sdrt.runtime.pipeline;

/** Told after each denoising step; may throw {@link java.util.concurrent.CancellationException} to stop. */
@FunctionalInterface
public interface StepListener {
    void onStep(int stepsDone, int totalSteps);

    StepListener NONE = (done, total) -> { };
}
