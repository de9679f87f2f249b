package dev.sdrt.runtime.trt;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.bytedeco.tensorrt.nvinfer.ILogger;

/**
 * The logger TensorRT reports through. Messages at or above a minimum severity (warnings by default)
 * go to java.util.logging under {@code dev.sdrt.runtime.trt.TensorRT}; every message also reaches the
 * registered {@link TrtLogListener}s (the engine builder turns them into build progress), and the most recent
 * errors are kept so that a failure can say what TensorRT complained about.
 *
 * <p>TensorRT keeps a raw pointer to its logger for as long as the process lives, so there is one
 * shared instance ({@link #shared()}), strongly referenced here and never garbage collected.
 */
public final class TrtLogger extends ILogger {

    private static final int KEPT_ERRORS = 20;
    private static final Logger JUL = Logger.getLogger("dev.sdrt.runtime.trt.TensorRT");
    private static final TrtLogger SHARED = new TrtLogger();

    private final List<TrtLogListener> listeners = new CopyOnWriteArrayList<>();
    private final Deque<String> recentErrors = new ArrayDeque<>();
    private volatile TrtSeverity minimumForwarded = TrtSeverity.WARNING;

    private TrtLogger() {
        super();
    }

    /** The process-wide logger handed to every TensorRT runtime, builder and parser sdrt creates. */
    public static TrtLogger shared() {
        return SHARED;
    }

    /** Messages less severe than {@code minimum} are not forwarded to java.util.logging (listeners still get them). */
    public void setMinimumForwarded(TrtSeverity minimum) {
        this.minimumForwarded = minimum;
    }

    public void addListener(TrtLogListener listener) {
        listeners.add(listener);
    }

    public void removeListener(TrtLogListener listener) {
        listeners.remove(listener);
    }

    /** The last errors TensorRT logged (oldest first), at most 20. */
    public List<String> recentErrors() {
        synchronized (recentErrors) {
            return new ArrayList<>(recentErrors);
        }
    }

    /** Forgets the kept errors, e.g. before an operation whose own errors should be reported. */
    public void clearRecentErrors() {
        synchronized (recentErrors) {
            recentErrors.clear();
        }
    }

    /** Called by TensorRT (through JNI) for every message. Must never throw into native code. */
    @Override
    public void log(Severity severity, String message) {
        try {
            TrtSeverity level = toLevel(severity);
            String text = message == null ? "" : message;
            if (level.atLeast(TrtSeverity.ERROR)) {
                synchronized (recentErrors) {
                    if (recentErrors.size() == KEPT_ERRORS) {
                        recentErrors.removeFirst();
                    }
                    recentErrors.addLast(text);
                }
            }
            if (level.atLeast(minimumForwarded)) {
                JUL.log(julLevel(level), "[TensorRT] " + text);
            }
            for (TrtLogListener listener : listeners) {
                listener.message(level, text);
            }
        } catch (Throwable t) {
            // An exception escaping into TensorRT's C++ would abort the process; report and carry on.
            System.err.println("sdrt: TensorRT log handling failed: " + t);
        }
    }

    /** Maps TensorRT's severity; JavaCPP hands over enum values that must be interned before comparing. */
    static TrtSeverity toLevel(Severity severity) {
        if (severity == null) {
            return TrtSeverity.INFO;
        }
        return switch (severity.intern()) {
            case kINTERNAL_ERROR -> TrtSeverity.INTERNAL_ERROR;
            case kERROR -> TrtSeverity.ERROR;
            case kWARNING -> TrtSeverity.WARNING;
            case kINFO -> TrtSeverity.INFO;
            case kVERBOSE -> TrtSeverity.VERBOSE;
        };
    }

    private static Level julLevel(TrtSeverity level) {
        return switch (level) {
            case INTERNAL_ERROR, ERROR -> Level.SEVERE;
            case WARNING -> Level.WARNING;
            case INFO -> Level.FINE;
            case VERBOSE -> Level.FINEST;
        };
    }
}
