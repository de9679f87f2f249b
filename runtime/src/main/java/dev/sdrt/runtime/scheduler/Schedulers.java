package dev.sdrt.runtime.scheduler;

import java.util.List;
import java.util.Locale;

/** Schedulers by the names the CLI and requests use. */
public final class Schedulers {

    public static final List<String> NAMES =
            List.of("ddim", "euler", "euler-a", "dpm++2m", "dpm++2m-karras", "flow-euler");

    private Schedulers() {
    }

    /**
     * The scheduler called {@code name} over {@code config}; "dpm++2m-karras" is "dpm++2m" with
     * Karras σs whatever the config says.
     */
    public static Scheduler create(String name, SchedulerConfig config) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "ddim" -> new DdimScheduler(config);
            case "euler" -> new EulerScheduler(config);
            case "euler-a" -> new EulerAncestralScheduler(config);
            case "dpm++2m" -> new DpmSolverMultistepScheduler(config);
            case "dpm++2m-karras" -> new DpmSolverMultistepScheduler(config.withKarrasSigmas(true));
            case "flow-euler" -> new FlowMatchEulerScheduler(config);
            default -> throw new IllegalArgumentException("unknown scheduler '" + name + "'; known: " + NAMES);
        };
    }
}
