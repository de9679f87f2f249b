package dev.sdrt.runtime.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class TimestepSpacingTest {

    @Test
    void leadingWithStepsOffset() {
        double[] timesteps = TimestepSpacing.LEADING.timesteps(1000, 50, 1);
        assertThat(timesteps).hasSize(50);
        for (int i = 0; i < 50; i++) {
            assertThat(timesteps[i]).isEqualTo(981 - 20 * i);
        }
        assertThat(TimestepSpacing.LEADING.timesteps(1000, 3, 0)).containsExactly(666, 333, 0);
    }

    @Test
    void trailingStartsAtTheLastTrainingStep() {
        double[] timesteps = TimestepSpacing.TRAILING.timesteps(1000, 50, 1);
        for (int i = 0; i < 50; i++) {
            assertThat(timesteps[i]).isEqualTo(999 - 20 * i);
        }
        // T/N = 333.33...: round(1000) − 1, round(666.67) − 1, round(333.33) − 1.
        assertThat(TimestepSpacing.TRAILING.timesteps(1000, 3, 0)).containsExactly(999, 666, 332);
        // 1000 − 60·(1000/61) rounds to 16: no stray negative timestep at the end.
        double[] sixtyOne = TimestepSpacing.TRAILING.timesteps(1000, 61, 0);
        assertThat(sixtyOne).hasSize(61);
        assertThat(sixtyOne[60]).isEqualTo(15);
    }

    @Test
    void linspaceIsFractionalFromTheLastTrainingStepToZero() {
        double[] timesteps = TimestepSpacing.LINSPACE.timesteps(1000, 50, 1);
        assertThat(timesteps[0]).isEqualTo(999.0);
        assertThat(timesteps[1]).isCloseTo(999 - 999.0 / 49, within(1e-12));
        assertThat(timesteps[49]).isEqualTo(0.0);
        assertThat(TimestepSpacing.LINSPACE.timesteps(1000, 1, 0)).containsExactly(0.0);
    }

    @Test
    void rejectsStepCountsOutsideTheTrainingRange() {
        assertThatThrownBy(() -> TimestepSpacing.LINSPACE.timesteps(1000, 0, 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> TimestepSpacing.LEADING.timesteps(1000, 1001, 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> TimestepSpacing.fromConfigName("uniform"))
                .hasMessageContaining("uniform");
    }
}
