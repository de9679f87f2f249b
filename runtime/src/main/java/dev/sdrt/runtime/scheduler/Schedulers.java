package dev.sdrt.runtime.scheduler;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Schedulers by the names the CLI and requests use, each for the {@link ModelKind} it can sample. */
public final class Schedulers {

    private static final Map<String, ModelKind> KINDS = new LinkedHashMap<>();

    static {
        KINDS.put("ddim", ModelKind.DIFFUSION);
        KINDS.put("euler", ModelKind.DIFFUSION);
        KINDS.put("euler-a", ModelKind.DIFFUSION);
        KINDS.put("dpm++2m", ModelKind.DIFFUSION);
        KINDS.put("dpm++2m-karras", ModelKind.DIFFUSION);
        KINDS.put("flow-euler", ModelKind.FLOW_MATCHING);
    }

    public static final List<String> NAMES = List.copyOf(KINDS.keySet());

    private Schedulers() {
    }

    /** The names of the schedulers that can sample a model of {@code kind}, in {@link #NAMES} order. */
    public static List<String> namesFor(ModelKind kind) {
        return KINDS.entrySet().stream().filter(e -> e.getValue() == kind).map(Map.Entry::getKey).toList();
    }

    /**
     * Refuses a name that is not a scheduler's, or whose scheduler cannot sample a model of {@code
     * kind}; the message lists the ones that can.
     */
    public static void requireFor(String name, ModelKind kind) {
        ModelKind samples = KINDS.get(name.toLowerCase(Locale.ROOT));
        if (samples == null) {
            throw new IllegalArgumentException("unknown scheduler '" + name + "'; choose one of " + String.join(", ", namesFor(kind)));
        }
        if (samples != kind) {
            throw new IllegalArgumentException("scheduler '" + name + "' samples " + samples.description() + " models, and this"
                    + " model is a " + kind.description() + " one; choose one of " + String.join(", ", namesFor(kind)));
        }
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

    /** {@link #create(String, SchedulerConfig)} for a model of {@code kind}, refusing a scheduler that cannot sample it. */
    public static Scheduler create(String name, SchedulerConfig config, ModelKind kind) {
        requireFor(name, kind);
        return create(name, config);
    }
}
