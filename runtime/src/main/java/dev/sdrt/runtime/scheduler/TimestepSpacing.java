package dev.sdrt.runtime.scheduler;

/**
 * How N inference timesteps are picked among the training timesteps 0..T−1; names as in
 * scheduler_config.json. See Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are
 * Flawed", table 2, for why the choice matters: only trailing and linspace start at t = T−1.
 */
public enum TimestepSpacing {
    /** N evenly spaced values from T−1 down to 0, fractional (DDIM rounds them). */
    LINSPACE("linspace"),
    /** k·⌊T/N⌋ for k = N−1..0, plus steps_offset (SD 1.x uses offset 1: 981, 961, ..., 1 for 50 steps). */
    LEADING("leading"),
    /** round(T − k·T/N) − 1 for k = 0..N−1: always starts at T−1. */
    TRAILING("trailing");

    private final String configName;

    TimestepSpacing(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    public static TimestepSpacing fromConfigName(String name) {
        for (TimestepSpacing spacing : values()) {
            if (spacing.configName.equals(name)) {
                return spacing;
            }
        }
        throw new IllegalArgumentException("unsupported timestep_spacing: " + name);
    }

    /**
     * Descending timesteps for {@code steps} inference steps over {@code trainSteps} training steps, as
     * DDIM and the Euler samplers space them. steps_offset applies to {@link #LEADING} only.
     */
    public double[] timesteps(int trainSteps, int steps, int stepsOffset) {
        if (steps < 1 || steps > trainSteps) {
            throw new IllegalArgumentException("steps must be in 1.." + trainSteps + ": " + steps);
        }
        double[] timesteps = new double[steps];
        switch (this) {
            case LINSPACE -> {
                double[] ascending = ScheduleMath.linspace(0, trainSteps - 1, steps);
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = ascending[steps - 1 - i];
                }
            }
            case LEADING -> {
                int stride = trainSteps / steps;
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = (double) (steps - 1 - i) * stride + stepsOffset;
                }
            }
            case TRAILING -> {
                // Exactly N values. diffusers' np.arange(T, 0, −T/N) gives N + 1 for some N (62 of
                // them up to 1000, e.g. N = 61) through rounding, the extra one being t = −1.
                double stride = (double) trainSteps / steps;
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = Math.rint(trainSteps - i * stride) - 1;
                }
            }
        }
        return timesteps;
    }
}
