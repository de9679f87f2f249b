package dev.sdrt.runtime.trt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The availability probes must answer on any machine, GPU or not, without throwing. */
class CudaAvailabilityTest {

    /** No NVIDIA device node means no usable GPU, whatever libraries are installed. */
    private static boolean machineHasNoGpu() {
        return !Files.exists(Path.of("/dev/nvidiactl")) && !Files.exists(Path.of("/dev/nvidia0"));
    }

    @Test
    void cudaProbeNeverThrowsAndExplainsAbsence() {
        assertThatCode(Cuda::isAvailable).doesNotThrowAnyException();
        if (machineHasNoGpu()) {
            assertThat(Cuda.isAvailable()).isFalse();
        }
        if (!Cuda.isAvailable()) {
            assertThat(Cuda.unavailableReason()).isNotBlank();
        } else {
            assertThat(Cuda.unavailableReason()).isEmpty();
        }
        // Asking again gives the same cached answer.
        assertThat(Cuda.isAvailable()).isEqualTo(Cuda.isAvailable());
    }

    @Test
    void tensorRtProbeNeverThrowsAndIsFalseWithoutCuda() {
        assertThatCode(TensorRt::isAvailable).doesNotThrowAnyException();
        if (!Cuda.isAvailable()) {
            assertThat(TensorRt.isAvailable()).isFalse();
            assertThat(TensorRt.unavailableReason()).isNotBlank();
        }
    }

    @Test
    void severityOrderMatchesTensorRt() {
        assertThat(TrtSeverity.ERROR.atLeast(TrtSeverity.WARNING)).isTrue();
        assertThat(TrtSeverity.INTERNAL_ERROR.atLeast(TrtSeverity.ERROR)).isTrue();
        assertThat(TrtSeverity.INFO.atLeast(TrtSeverity.WARNING)).isFalse();
        assertThat(TrtSeverity.VERBOSE.atLeast(TrtSeverity.VERBOSE)).isTrue();
    }

    @Test
    void syncCounterStartsWithoutCountingAnything() {
        // No GPU work has been done by this thread, so nothing was counted on it.
        assertThat(SyncCounter.countOnThisThread()).isZero();
        assertThat(SyncCounter.count()).isGreaterThanOrEqualTo(0);
    }
}
