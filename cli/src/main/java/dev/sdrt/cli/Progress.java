package dev.sdrt.cli;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.runtime.pipeline.LoadListener;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;

/**
 * Progress of a long task on a command's stderr. On a terminal, a bar that redraws itself; anywhere
 * else (a log file, a pipe, a test's writer) a plain line at every tenth of the work and at least
 * every few seconds, with no colour codes and no carriage returns, which logs show as garbage.
 */
public final class Progress implements AutoCloseable {
    private static final long PLAIN_LINE_NANOS = 5_000_000_000L;
    private static final boolean STDERR_IS_TERMINAL = stderrIsTerminal();

    private final PrintWriter err;
    private final String task;
    private final String unit;
    /** Null off a terminal. */
    private final ProgressBar bar;
    private final long start = System.nanoTime();
    private long max;
    private long done;
    private int lastTenth;
    private long lastLine = System.nanoTime();

    private Progress(PrintWriter err, String task, long max, String unit, long updateMillis) {
        this.err = err;
        this.task = task;
        this.unit = unit;
        this.max = max;
        this.bar = isTerminal(err) ? new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setUnit(" " + unit, 1)
                .setConsumer(new ConsoleProgressBarConsumer(System.err)).setUpdateIntervalMillis((int) updateMillis).build() : null;
    }

    /**
     * Starts showing {@code task}, {@code max} {@code unit}s of work, on {@code err}.
     *
     * @param updateMillis how often a terminal's bar redraws
     */
    public static Progress start(PrintWriter err, String task, long max, String unit, long updateMillis) {
        return new Progress(err, task, max, unit, updateMillis);
    }

    /**
     * Whether {@code err} draws a redrawn bar: it must be the process's stderr ({@link SdrtMain#main}'s,
     * not a caller's writer) and a terminal.
     */
    static boolean isTerminal(PrintWriter err) {
        return err == SdrtMain.STDERR && STDERR_IS_TERMINAL;
    }

    /**
     * System.console() says stdin and stdout are a terminal; stderr may still go to a file or a pipe
     * ({@code 2> log}), which on Linux /proc/self/fd/2 tells.
     */
    private static boolean stderrIsTerminal() {
        if (System.console() == null || "dumb".equals(System.getenv("TERM"))) {
            return false;
        }
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (IOException | UnsupportedOperationException | SecurityException noProc) {
            // no /proc (macOS, Windows): go by System.console()
            return true;
        }
    }

    public synchronized void stepTo(long n) {
        done = n;
        if (bar != null) {
            bar.stepTo(n);
            return;
        }
        int tenth = max > 0 ? (int) Math.min(10, done * 10 / max) : 0;
        long now = System.nanoTime();
        if (tenth > lastTenth || now - lastLine >= PLAIN_LINE_NANOS) {
            lastTenth = tenth;
            lastLine = now;
            err.printf(Locale.ROOT, "%s: %,d/%,d %s (%d%%), %.1f s%n", task, done, max, unit, max > 0 ? done * 100 / max : 0,
                    (now - start) / 1e9);
            err.flush();
        }
    }

    public synchronized void stepBy(long n) {
        stepTo(done + n);
    }

    /** Changes the amount of work (image to image runs fewer steps than asked for; a failed part runs none). */
    public synchronized void maxHint(long newMax) {
        max = newMax;
        if (bar != null) {
            bar.maxHint(newMax);
        }
    }

    public synchronized long max() {
        return max;
    }

    /** Starts over, for a task that runs again. */
    public synchronized void reset() {
        done = 0;
        lastTenth = 0;
        if (bar != null) {
            bar.reset();
        }
    }

    /** A line of its own: on a terminal, written over the bar, which redraws itself below it. */
    public synchronized void println(String line) {
        if (bar != null) {
            err.print("\r\033[K");
        }
        err.println(line);
        err.flush();
    }

    @Override
    public synchronized void close() {
        if (bar != null) {
            bar.close();
        }
    }

    /**
     * A line per model a pipeline opens, on {@code err}: "loading unet (3.2 GiB)… 8.4 s", the size
     * before it loads, so that the seconds of a large model are explained while they pass.
     */
    static LoadListener loadLines(PrintWriter err) {
        return new LoadListener() {
            @Override
            public void loading(String component, Path file) {
                err.printf("loading %s (%s)… ", component, ByteSizes.human(withExternalData(file)));
                err.flush();
            }

            @Override
            public void loaded(String component, Path file, double seconds) {
                err.printf(Locale.ROOT, "%.1f s%n", seconds);
                err.flush();
            }

            @Override
            public void failed(String component, Path file) {
                err.println("failed");
                err.flush();
            }
        };
    }

    /** The bytes of the model {@code file} and of the external data files it points to. */
    static long withExternalData(Path file) {
        try {
            long bytes = Files.size(file);
            for (Path data : OnnxModel.externalDataFiles(file)) {
                bytes += Files.size(data);
            }
            return bytes;
        } catch (IOException unreadable) {
            // the loader reports the file's problem itself
            return 0;
        }
    }
}
