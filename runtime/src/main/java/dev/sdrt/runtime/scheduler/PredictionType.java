package dev.sdrt.runtime.scheduler;

/**
 * What the denoiser predicts; names as in scheduler_config.json.
 *
 * <p>Both are expressed through a variance-preserving sample x = α·x0 + σ·ε with α² + σ² = 1:
 * ε-prediction returns ε; v-prediction (Salimans &amp; Ho 2022, used by SD 2.x at 768²) returns
 * v = α·ε − σ·x0, so that x0 = α·x − σ·v and ε = σ·x + α·v.
 */
public enum PredictionType {
    EPSILON("epsilon"),
    V_PREDICTION("v_prediction");

    private final String configName;

    PredictionType(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    public static PredictionType fromConfigName(String name) {
        for (PredictionType type : values()) {
            if (type.configName.equals(name)) {
                return type;
            }
        }
        throw new IllegalArgumentException("unsupported prediction_type: " + name);
    }

    /** x0 from a variance-preserving sample x = α·x0 + σ·ε and the model output. */
    public LinearForm denoisedFromVariancePreserving(double alpha, double sigma) {
        return switch (this) {
            case EPSILON -> new LinearForm(1 / alpha, -sigma / alpha);
            case V_PREDICTION -> new LinearForm(alpha, -sigma);
        };
    }

    /** ε from a variance-preserving sample x = α·x0 + σ·ε and the model output. */
    public LinearForm noiseFromVariancePreserving(double alpha, double sigma) {
        return switch (this) {
            case EPSILON -> new LinearForm(0, 1);
            case V_PREDICTION -> new LinearForm(sigma, alpha);
        };
    }

    /**
     * x0 from a variance-exploding sample x = x0 + σ·ε (the Euler-family samplers' variable), which
     * the model sees scaled to the variance-preserving x / √(σ² + 1), i.e. α = 1/√(σ² + 1) and
     * σ_vp = σ·α: for ε this is x0 = x − σ·ε, for v it is x0 = x/(σ² + 1) − σ/√(σ² + 1)·v.
     */
    public LinearForm denoisedFromVarianceExploding(double sigma) {
        double alpha = 1 / Math.sqrt(sigma * sigma + 1);
        LinearForm fromScaled = denoisedFromVariancePreserving(alpha, sigma * alpha);
        return new LinearForm(fromScaled.sampleCoefficient() * alpha, fromScaled.outputCoefficient());
    }
}
