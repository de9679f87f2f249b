package dev.sdrt.runtime.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class FeatureCacheScheduleTest {

    @Test
    void uniformRunsFullEveryNthStep() {
        FeatureCacheSchedule s = FeatureCacheSchedule.uniform(10, 3);
        assertThat(s.fullSteps()).containsExactly(0, 3, 6, 9);
        assertThat(s.fullCount()).isEqualTo(4);
        assertThat(s.shallowCount()).isEqualTo(6);
        assertThat(s.toString()).isEqualTo("F s s F s s F s s F");
        assertThat(s.isFull(3)).isTrue();
        assertThat(s.isFull(4)).isFalse();
        assertThat(s.description()).isEqualTo("uniform 1:3");
    }

    @ParameterizedTest(name = "{0} steps, 1:{1}")
    @CsvSource({"50, 3, 17", "50, 5, 10", "50, 2, 25", "30, 3, 10", "10, 4, 3", "7, 3, 3", "5, 9, 1", "1, 3, 1"})
    void uniformHasCeilStepsOverIntervalFullSteps(int steps, int interval, int expected) {
        FeatureCacheSchedule s = FeatureCacheSchedule.uniform(steps, interval);
        assertThat(s.fullCount()).isEqualTo(expected).isEqualTo((steps + interval - 1) / interval);
        assertThat(IntStream.range(0, steps).filter(s::isFull).toArray()).containsExactly(s.fullSteps());
        assertThat(s.isFull(0)).isTrue();
    }

    @Test
    void intervalOneRunsEveryStepFull() {
        for (FeatureCacheSchedule s : new FeatureCacheSchedule[] {FeatureCacheSchedule.uniform(50, 1),
                FeatureCacheSchedule.nonUniform(50, 1), FeatureCacheSchedule.nonUniform(50, 1, 0.7, 2.0)}) {
            assertThat(s.fullCount()).isEqualTo(50);
            assertThat(s.shallowCount()).isZero();
            assertThat(IntStream.range(0, 50).allMatch(s::isFull)).isTrue();
        }
    }

    /** DeepCache's defaults (centre 15 of 50, power 1.4): dense around step 15, sparse at the ends. */
    @Test
    void nonUniformCrowdsAroundTheCentre() {
        FeatureCacheSchedule s = FeatureCacheSchedule.nonUniform(50, 3);
        assertThat(s.fullSteps()).containsExactly(0, 4, 7, 10, 12, 14, 15, 16, 18, 20, 23, 26, 29, 33, 37, 41, 45);
        assertThat(s.description()).isEqualTo("non-uniform 1:3 (centre 15, power 1.4)");
        int[] f = s.fullSteps();
        int nearCentre = f[6] - f[5];
        int atTheEnd = f[f.length - 1] - f[f.length - 2];
        assertThat(nearCentre).isLessThan(atTheEnd);
        assertThat(s.toString()).startsWith("F s s s F s s F s s F s F s F F F s F");
    }

    /** Step 0 full, strictly increasing, in range and exactly ceil(steps / interval) full steps, for every setting. */
    @Test
    void nonUniformKeepsItsPromisesEverywhere() {
        for (int steps = 1; steps <= 100; steps++) {
            for (int interval = 1; interval <= 10; interval++) {
                for (double centre : new double[] {0, 0.1, 0.3, 0.5, 0.75, 1}) {
                    for (double power : new double[] {1.0, 1.4, 2.5}) {
                        FeatureCacheSchedule s = FeatureCacheSchedule.nonUniform(steps, interval, centre, power);
                        int[] f = s.fullSteps();
                        boolean ok = f.length == (steps + interval - 1) / interval && f[0] == 0 && s.isFull(0)
                                && f[f.length - 1] < steps && !s.description().endsWith("→ uniform");
                        for (int i = 1; i < f.length; i++) {
                            ok &= f[i] > f[i - 1];
                        }
                        if (!ok) {
                            throw new AssertionError(steps + " steps 1:" + interval + " centre " + centre + " power "
                                    + power + ": " + Arrays.toString(f) + " (" + s.description() + ")");
                        }
                    }
                }
            }
        }
    }

    @Test
    void nonUniformLowersThePowerWhenStepsWouldCoincide() {
        // 25 full steps of 50 around the middle: at 1.4 some would coincide
        FeatureCacheSchedule s = FeatureCacheSchedule.nonUniform(50, 2, 0.5, 1.4);
        assertThat(s.fullCount()).isEqualTo(25);
        assertThat(s.description()).contains("→ power");
    }

    @Test
    void rejectsBadSettings() {
        assertThatThrownBy(() -> FeatureCacheSchedule.uniform(0, 3)).hasMessageContaining("steps must be at least 1");
        assertThatThrownBy(() -> FeatureCacheSchedule.uniform(10, 0)).hasMessageContaining("interval must be at least 1");
        assertThatThrownBy(() -> FeatureCacheSchedule.nonUniform(10, 3, 1.5, 1.4)).hasMessageContaining("centre");
        assertThatThrownBy(() -> FeatureCacheSchedule.nonUniform(10, 3, 0.3, 0.5)).hasMessageContaining("power");
        assertThatThrownBy(() -> FeatureCacheSchedule.uniform(10, 3).isFull(10))
                .hasMessageContaining("outside this 10-step schedule");
    }

    @Test
    void fullStepsIsACopy() {
        FeatureCacheSchedule s = FeatureCacheSchedule.uniform(6, 2);
        int[] f = s.fullSteps();
        Arrays.fill(f, 5);
        assertThat(s.fullSteps()).containsExactly(0, 2, 4);
        assertThat(s).isEqualTo(FeatureCacheSchedule.uniform(6, 2)).hasSameHashCodeAs(FeatureCacheSchedule.uniform(6, 2));
    }
}
