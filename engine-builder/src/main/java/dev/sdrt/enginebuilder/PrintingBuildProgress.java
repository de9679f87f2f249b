package dev.sdrt.enginebuilder;

import java.io.PrintStream;

/** Build progress as plain text lines (for GpuBench and logs): phase starts, ends and every tenth of the steps. */
public final class PrintingBuildProgress implements BuildProgress {

    private final PrintStream out;
    private final long started = System.nanoTime();
    private volatile int steps;
    private volatile int lastTenth = -1;

    public PrintingBuildProgress(PrintStream out) {
        this.out = out;
    }

    @Override
    public void phaseStart(String phase, String parentPhase, int steps) {
        this.steps = steps;
        this.lastTenth = -1;
        out.printf("[%6.1fs] %s%s%n", seconds(), phase, steps > 0 ? " (" + steps + " steps)" : "");
    }

    @Override
    public void stepComplete(String phase, int step) {
        int total = steps;
        if (total <= 0) {
            return;
        }
        int tenth = (step + 1) * 10 / total;
        if (tenth > lastTenth) {
            lastTenth = tenth;
            out.printf("[%6.1fs]   %s: %d/%d%n", seconds(), phase, step + 1, total);
        }
    }

    @Override
    public void phaseFinish(String phase) {
        out.printf("[%6.1fs] %s done%n", seconds(), phase);
    }

    private double seconds() {
        return (System.nanoTime() - started) / 1e9;
    }
}
