package dev.sdrt.runtime.trt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class KernelTimelineTest {

    @Test
    void aChainGivesEachNodeTheGapSinceItsPredecessor() {
        int[][] predecessors = {{}, {0}, {1}, {2}};
        double[] completion = {0, 1.5, 1.75, 4.0};
        assertArrayEquals(new double[] {0, 1.5, 0.25, 2.25}, KernelTimeline.durations(predecessors, completion), 1e-12);
    }

    @Test
    void aJoinStartsWhenItsLastPredecessorCompletes() {
        // 0 forks into 1 and 2, which join at 3.
        int[][] predecessors = {{}, {0}, {0}, {1, 2}};
        double[] completion = {0, 2.0, 3.0, 3.5};
        assertArrayEquals(new double[] {0, 2.0, 3.0, 0.5}, KernelTimeline.durations(predecessors, completion), 1e-12);
    }

    @Test
    void timerJitterNeverGivesANegativeDuration() {
        int[][] predecessors = {{}, {0}, {1}};
        double[] completion = {0, 1.0, 0.9995};
        assertArrayEquals(new double[] {0, 1.0, 0}, KernelTimeline.durations(predecessors, completion), 1e-12);
    }

    @Test
    void mismatchedInputsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> KernelTimeline.durations(new int[][] {{}}, new double[2]));
    }
}
