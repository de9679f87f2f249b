package dev.sdrt.runtime.scheduler;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The fields of a diffusers {@code scheduler_config.json} that the schedulers here read.
 *
 * @param numTrainTimesteps T, the number of training timesteps
 * @param timestepSpacing null when the config does not say: each scheduler then uses its own default
 *     (DDIM: leading; Euler, Euler ancestral, DPM-Solver++: linspace), as diffusers does
 * @param stepsOffset added to leading-spaced timesteps (1 in SD 1.x/2.x configs)
 * @param useKarrasSigmas Karras et al. 2022 σ spacing for the Euler and DPM-Solver++ schedulers
 * @param shift flow-matching timestep shift (3.0 for SD3-medium)
 * @param setAlphaToOne DDIM's last step lands on ᾱ = 1 (true) or on ᾱ_0 (false, as SD configs say)
 */
public record SchedulerConfig(
        int numTrainTimesteps,
        double betaStart,
        double betaEnd,
        BetaSchedule betaSchedule,
        PredictionType predictionType,
        TimestepSpacing timestepSpacing,
        int stepsOffset,
        boolean useKarrasSigmas,
        double shift,
        boolean setAlphaToOne) {

    public SchedulerConfig {
        if (numTrainTimesteps < 2) {
            throw new IllegalArgumentException("num_train_timesteps must be at least 2: " + numTrainTimesteps);
        }
        if (!(betaStart > 0 && betaEnd >= betaStart && betaEnd < 1)) {
            throw new IllegalArgumentException("need 0 < beta_start <= beta_end < 1: " + betaStart + ", " + betaEnd);
        }
        if (!(shift > 0)) {
            throw new IllegalArgumentException("shift must be positive: " + shift);
        }
        if (stepsOffset < 0) {
            throw new IllegalArgumentException("steps_offset must not be negative: " + stepsOffset);
        }
        if (betaSchedule == null || predictionType == null) {
            throw new IllegalArgumentException("beta_schedule and prediction_type are required");
        }
    }

    /** The defaults of diffusers' scheduler classes, used for every field a config file leaves out. */
    public static SchedulerConfig defaults() {
        return new SchedulerConfig(1000, 0.0001, 0.02, BetaSchedule.LINEAR, PredictionType.EPSILON,
                null, 0, false, 1.0, true);
    }

    /** Stable Diffusion 1.x/2.x/XL: scaled_linear 0.00085 → 0.012 over 1000 steps, steps_offset 1. */
    public static SchedulerConfig stableDiffusion() {
        return new SchedulerConfig(1000, 0.00085, 0.012, BetaSchedule.SCALED_LINEAR, PredictionType.EPSILON,
                null, 1, false, 1.0, false);
    }

    /** SD3-medium's flow-matching config: 1000 training steps, shift 3.0. */
    public static SchedulerConfig stableDiffusion3() {
        return defaults().withShift(3.0);
    }

    /** Reads a scheduler_config.json; absent or null fields take {@link #defaults()}. */
    public static SchedulerConfig fromJson(Path schedulerConfigJson) throws IOException {
        return parse(Files.readString(schedulerConfigJson, StandardCharsets.UTF_8));
    }

    /** {@link #fromJson(Path)} for the file's text. */
    public static SchedulerConfig parse(String json) {
        JsonObject object = JsonParser.parseString(json).getAsJsonObject();
        JsonElement trainedBetas = object.get("trained_betas");
        if (trainedBetas != null && !trainedBetas.isJsonNull()) {
            throw new IllegalArgumentException("trained_betas is not supported");
        }
        SchedulerConfig d = defaults();
        String spacing = stringField(object, "timestep_spacing", null);
        return new SchedulerConfig(
                (int) numberField(object, "num_train_timesteps", d.numTrainTimesteps()),
                numberField(object, "beta_start", d.betaStart()),
                numberField(object, "beta_end", d.betaEnd()),
                BetaSchedule.fromConfigName(stringField(object, "beta_schedule", d.betaSchedule().configName())),
                PredictionType.fromConfigName(
                        stringField(object, "prediction_type", d.predictionType().configName())),
                spacing == null ? null : TimestepSpacing.fromConfigName(spacing),
                (int) numberField(object, "steps_offset", d.stepsOffset()),
                booleanField(object, "use_karras_sigmas", d.useKarrasSigmas()),
                numberField(object, "shift", d.shift()),
                booleanField(object, "set_alpha_to_one", d.setAlphaToOne()));
    }

    private static double numberField(JsonObject object, String name, double absent) {
        JsonElement element = object.get(name);
        return element == null || element.isJsonNull() ? absent : element.getAsDouble();
    }

    private static boolean booleanField(JsonObject object, String name, boolean absent) {
        JsonElement element = object.get(name);
        return element == null || element.isJsonNull() ? absent : element.getAsBoolean();
    }

    private static String stringField(JsonObject object, String name, String absent) {
        JsonElement element = object.get(name);
        return element == null || element.isJsonNull() ? absent : element.getAsString();
    }

    /** The configured spacing, or {@code schedulerDefault} when the config leaves it open. */
    public TimestepSpacing timestepSpacingOr(TimestepSpacing schedulerDefault) {
        return timestepSpacing != null ? timestepSpacing : schedulerDefault;
    }

    public SchedulerConfig withPredictionType(PredictionType type) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, type, timestepSpacing,
                stepsOffset, useKarrasSigmas, shift, setAlphaToOne);
    }

    public SchedulerConfig withTimestepSpacing(TimestepSpacing spacing) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, predictionType, spacing,
                stepsOffset, useKarrasSigmas, shift, setAlphaToOne);
    }

    public SchedulerConfig withKarrasSigmas(boolean karras) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, predictionType,
                timestepSpacing, stepsOffset, karras, shift, setAlphaToOne);
    }

    public SchedulerConfig withShift(double newShift) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, predictionType,
                timestepSpacing, stepsOffset, useKarrasSigmas, newShift, setAlphaToOne);
    }
}
