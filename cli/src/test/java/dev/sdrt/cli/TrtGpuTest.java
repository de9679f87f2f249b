package dev.sdrt.cli;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.trt.TensorRt;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU suite: TensorRT builds and runs the tiny SD UNet fixture. Excluded by default (tag "gpu");
 * {@code mvn -Pgpu-tests -pl cli test} runs only these. Skipped (not failed) on a machine
 * without a usable GPU and TensorRT. The same checks run without Maven through
 * {@code sdrt gpu selftest}.
 */
@Tag("gpu")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TrtGpuTest {

    @TempDir
    static Path work;

    static GpuChecks checks;

    @BeforeAll
    static void createChecks() {
        checks = new GpuChecks(Fixtures.dir(), work);
    }

    /** Per test, so that a machine without a GPU reports every test as skipped. */
    @BeforeEach
    void requireGpu() {
        assumeTrue(TensorRt.isAvailable(), () -> "no usable GPU/TensorRT: " + TensorRt.unavailableReason());
    }

    @Test
    @Order(1)
    void gpuAndTensorRtLoad() {
        checks.gpuAndTensorRtLoad();
    }

    @Test
    @Order(2)
    void buildsTinyUnetEngineWithManifest() throws Exception {
        checks.buildTinyUnetEngine();
    }

    @Test
    @Order(3)
    void engineOutputMatchesTheFixture() throws Exception {
        checks.outputMatchesReference();
    }

    @Test
    @Order(4)
    void identicalRequestReusesTheEngine() throws Exception {
        checks.identicalRequestReusesEngine();
    }

    @Test
    @Order(5)
    void plainRunMakesExactlyOneSync() throws Exception {
        checks.plainRunMakesOneSync();
    }

    @Test
    @Order(6)
    void graphReplayEqualsEagerEnqueue() throws Exception {
        checks.graphReplayEqualsEager();
    }

    @Test
    @Order(7)
    void contextsShareOneActivationBuffer() throws Exception {
        checks.contextsShareActivationMemory();
    }

    @Test
    @Order(8)
    void engineFromAnotherGpuIsRefused() throws Exception {
        checks.refusesEngineFromAnotherGpu();
    }

    @Test
    @Order(9)
    void engineInfoReportsDeviceMemory() throws Exception {
        checks.engineInfoReportsDeviceMemory();
    }

    @Test
    @Order(10)
    void kernelProfileNamesAndTimesTheEngineKernels() throws Exception {
        checks.kernelProfileCoversTheEngine();
    }

    @Test
    @Order(11)
    void aFailedCaptureLeavesTheStreamUsable() throws Exception {
        checks.failedCaptureLeavesTheStreamUsable();
    }
}
