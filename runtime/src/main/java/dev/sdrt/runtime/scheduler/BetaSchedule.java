package dev.sdrt.runtime.scheduler;

/** How the per-step noise variances β_t of training grow with t; names as in scheduler_config.json. */
public enum BetaSchedule {
    /** β linear from beta_start to beta_end (DDPM, Ho et al. 2020). */
    LINEAR("linear"),
    /** √β linear from √beta_start to √beta_end, then squared: Stable Diffusion's schedule. */
    SCALED_LINEAR("scaled_linear"),
    /** Cosine schedule of Nichol &amp; Dhariwal 2021, each β capped at 0.999; ignores beta_start/end. */
    SQUAREDCOS_CAP_V2("squaredcos_cap_v2");

    private final String configName;

    BetaSchedule(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    public static BetaSchedule fromConfigName(String name) {
        for (BetaSchedule schedule : values()) {
            if (schedule.configName.equals(name)) {
                return schedule;
            }
        }
        throw new IllegalArgumentException("unsupported beta_schedule: " + name);
    }
}
