package dev.sdrt.runtime.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SchedulerConfigTest {

    /** runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json. */
    private static final String SD15 = """
            {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
             "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null,
             "clip_sample": false}""";

    @Test
    void readsStableDiffusion15(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("scheduler_config.json");
        Files.writeString(file, SD15);
        SchedulerConfig config = SchedulerConfig.fromJson(file);
        assertThat(config).isEqualTo(SchedulerConfig.stableDiffusion());
        assertThat(config.timestepSpacing()).isNull();
        assertThat(config.timestepSpacingOr(TimestepSpacing.LEADING)).isEqualTo(TimestepSpacing.LEADING);
    }

    @Test
    void readsVPredictionAndSpacing() {
        SchedulerConfig sd21 = SchedulerConfig.parse("""
                {"_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
                 "prediction_type": "v_prediction", "set_alpha_to_one": false, "steps_offset": 1,
                 "trained_betas": null}""");
        assertThat(sd21.predictionType()).isEqualTo(PredictionType.V_PREDICTION);

        SchedulerConfig sdxl = SchedulerConfig.parse("""
                {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "beta_start": 0.00085, "interpolation_type": "linear", "num_train_timesteps": 1000,
                 "prediction_type": "epsilon", "steps_offset": 1, "timestep_spacing": "leading",
                 "use_karras_sigmas": false}""");
        assertThat(sdxl.timestepSpacing()).isEqualTo(TimestepSpacing.LEADING);
        assertThat(sdxl.timestepSpacingOr(TimestepSpacing.LINSPACE)).isEqualTo(TimestepSpacing.LEADING);
    }

    @Test
    void readsFlowMatchingShiftAndDefaultsTheRest() {
        SchedulerConfig sd3 = SchedulerConfig.parse("""
                {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.29.0.dev0",
                 "num_train_timesteps": 1000, "shift": 3.0}""");
        assertThat(sd3).isEqualTo(SchedulerConfig.stableDiffusion3());
        assertThat(sd3.betaSchedule()).isEqualTo(BetaSchedule.LINEAR);
        assertThat(sd3.setAlphaToOne()).isTrue();
    }

    @Test
    void rejectsWhatItCannotHonour() {
        assertThatThrownBy(() -> SchedulerConfig.parse("{\"trained_betas\": [0.1, 0.2]}"))
                .hasMessageContaining("trained_betas");
        assertThatThrownBy(() -> SchedulerConfig.parse("{\"prediction_type\": \"sample\"}"))
                .hasMessageContaining("sample");
        assertThatThrownBy(() -> SchedulerConfig.parse("{\"beta_schedule\": \"sigmoid\"}"))
                .hasMessageContaining("sigmoid");
        assertThatThrownBy(() -> SchedulerConfig.defaults().withShift(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
