package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.trt.TrtLogListener;
import dev.sdrt.runtime.trt.TrtSeverity;

/**
 * Turns TensorRT's log into build progress.
 *
 * <p>Why not TensorRT's own IProgressMonitor: the bytedeco 10.6 bindings do not "virtualize" it (no
 * Java-overridable callbacks, unlike ILogger), so a Java subclass would never be called. TensorRT does
 * log one verbose line per layer as it selects tactics ("Computing costs for ..."), the slow part of a
 * build; counting those against the network's layer count gives a usable bar. Layers fused into one
 * are costed once, so the count may stop short of the total: the phase then jumps to done when the
 * build returns. The exact wording is not a TensorRT API, so this is best-effort by design.
 */
public final class LogBuildProgress implements TrtLogListener {

    static final String STEP_MARKER = "Computing costs for";

    private final BuildProgress target;
    private final String phase;
    private final int steps;
    private int completed;

    /** Reports steps of {@code phase} (already started, with {@code steps} steps) to {@code target}. */
    public LogBuildProgress(BuildProgress target, String phase, int steps) {
        this.target = target;
        this.phase = phase;
        this.steps = steps;
    }

    @Override
    public void message(TrtSeverity severity, String text) {
        if (text == null || !text.contains(STEP_MARKER)) {
            return;
        }
        int step;
        synchronized (this) {
            // Leave the last step for the build's end, so the bar never shows done too early.
            if (completed >= steps - 1) {
                return;
            }
            step = completed++;
        }
        target.stepComplete(phase, step);
    }

    /** Steps reported so far. */
    public synchronized int completed() {
        return completed;
    }
}
