package dev.sdrt.runtime.scheduler;

/**
 * The training noise schedule: β_t for t = 0..T−1 and ᾱ_t = ∏_{s≤t} (1 − β_s), so that a training
 * sample at step t is x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·ε (Ho et al. 2020, eq. 4). Computed in double.
 */
public final class NoiseSchedule {

    /** Nichol &amp; Dhariwal 2021, eq. 17: β is capped so that the last steps stay invertible. */
    private static final double COSINE_MAX_BETA = 0.999;
    /** Nichol &amp; Dhariwal 2021, eq. 17: the offset s that keeps β_0 from being tiny. */
    private static final double COSINE_OFFSET = 0.008;

    private final double[] betas;
    private final double[] alphasCumprod;

    private NoiseSchedule(double[] betas) {
        this.betas = betas;
        this.alphasCumprod = new double[betas.length];
        double product = 1;
        for (int t = 0; t < betas.length; t++) {
            product *= 1 - betas[t];
            alphasCumprod[t] = product;
        }
    }

    public static NoiseSchedule of(SchedulerConfig config) {
        return create(config.betaSchedule(), config.betaStart(), config.betaEnd(), config.numTrainTimesteps());
    }

    public static NoiseSchedule create(BetaSchedule schedule, double betaStart, double betaEnd, int trainSteps) {
        if (trainSteps < 2) {
            throw new IllegalArgumentException("need at least 2 training timesteps: " + trainSteps);
        }
        double[] betas = switch (schedule) {
            case LINEAR -> ScheduleMath.linspace(betaStart, betaEnd, trainSteps);
            case SCALED_LINEAR -> {
                double[] roots = ScheduleMath.linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), trainSteps);
                for (int t = 0; t < trainSteps; t++) {
                    roots[t] *= roots[t];
                }
                yield roots;
            }
            case SQUAREDCOS_CAP_V2 -> {
                double[] cosine = new double[trainSteps];
                for (int t = 0; t < trainSteps; t++) {
                    double ratio = cosineAlphaBar((t + 1.0) / trainSteps) / cosineAlphaBar((double) t / trainSteps);
                    cosine[t] = Math.min(1 - ratio, COSINE_MAX_BETA);
                }
                yield cosine;
            }
        };
        return new NoiseSchedule(betas);
    }

    /** ᾱ(u) = cos²((u + s)/(1 + s)·π/2) for u in [0, 1]. */
    private static double cosineAlphaBar(double u) {
        double c = Math.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * Math.PI / 2);
        return c * c;
    }

    public int trainSteps() {
        return betas.length;
    }

    public double beta(int t) {
        return betas[t];
    }

    public double alphaCumprod(int t) {
        return alphasCumprod[t];
    }

    public double[] betas() {
        return betas.clone();
    }

    public double[] alphasCumprod() {
        return alphasCumprod.clone();
    }

    /**
     * σ_t = √((1 − ᾱ_t)/ᾱ_t): the noise level of the same sample written variance-exploding,
     * x_t/√ᾱ_t = x0 + σ_t·ε (Karras et al. 2022, table 1, "VP").
     */
    public double sigma(int t) {
        return Math.sqrt((1 - alphasCumprod[t]) / alphasCumprod[t]);
    }

    /** σ_t for every training timestep, increasing with t. */
    public double[] sigmas() {
        double[] sigmas = new double[betas.length];
        for (int t = 0; t < sigmas.length; t++) {
            sigmas[t] = sigma(t);
        }
        return sigmas;
    }
}
