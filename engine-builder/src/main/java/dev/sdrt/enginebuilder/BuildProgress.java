package dev.sdrt.enginebuilder;

/**
 * Receives progress while an engine builds, shaped like TensorRT's IProgressMonitor so a command-line
 * progress bar can follow it: phases (possibly nested) made of a known number of steps.
 *
 * <p>Calls may come from TensorRT's builder threads; implementations must be thread-safe and quick.
 */
public interface BuildProgress {

    /** A phase begins; {@code parentPhase} is null for a top-level phase; {@code steps} may be 0 when unknown. */
    void phaseStart(String phase, String parentPhase, int steps);

    /** Step {@code step} (0-based) of {@code phase} is done. */
    void stepComplete(String phase, int step);

    void phaseFinish(String phase);

    /** Progress that goes nowhere. */
    BuildProgress NONE = new BuildProgress() {
        @Override
        public void phaseStart(String phase, String parentPhase, int steps) {}

        @Override
        public void stepComplete(String phase, int step) {}

        @Override
        public void phaseFinish(String phase) {}
    };
}
