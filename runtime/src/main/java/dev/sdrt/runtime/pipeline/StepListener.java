package dev.sdrt.runtime.pipeline;

/**
 * Told after each denoising step, on the thread computing the batch. Throwing a {@link
 * java.util.concurrent.CancellationException} cancels the listener's own request; any other
 * exception fails it. Either way the listener is not called again and the other requests in the
 * batch go on.
 */
@FunctionalInterface
public interface StepListener {
    void onStep(int stepsDone, int totalSteps);

    StepListener NONE = (done, total) -> { };
}
