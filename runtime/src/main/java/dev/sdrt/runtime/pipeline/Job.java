package dev.sdrt.runtime.pipeline;

import java.util.concurrent.CompletableFuture;

/** A request with its listener, its future, and when it was submitted. */
record Job(GenerationRequest request, StepListener listener, CompletableFuture<GeneratedImage> future, long submittedNanos) {
    /** Done already (cancelled, past its deadline, failed by its listener): nobody wants what it computes. */
    boolean abandoned() {
        return future.isDone();
    }
}
