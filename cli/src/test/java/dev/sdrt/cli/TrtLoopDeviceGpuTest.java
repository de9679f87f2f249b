package dev.sdrt.cli;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
 * The device loop on TensorRT against the host loop, on the tiny pipeline with engines from {@code
 * sdrt build-pipeline}. Excluded by default (tag "gpu"): {@code mvn -Pgpu-tests -pl cli -am test
 * -Dtest=TrtLoopDeviceGpuTest -Dsurefire.failIfNoSpecifiedTests=false} runs it; skipped (not failed)
 * without a usable GPU and TensorRT. The same checks run without Maven through
 * {@code sdrt gpu loopcheck} ({@code gpu-run.sh loopcheck}).
 */
@Tag("gpu")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TrtLoopDeviceGpuTest {

    @TempDir
    static Path work;

    static DeviceLoopGpuChecks checks;

    @BeforeAll
    static void createChecks() {
        checks = new DeviceLoopGpuChecks(work);
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
    void buildPipelineBuildsEveryEngine() throws Exception {
        checks.buildsEveryEngine();
    }

    @Test
    @Order(3)
    void buildPipelineAgainReusesEveryEngine() throws Exception {
        checks.rebuildReuses();
    }

    @Test
    @Order(4)
    void eagerLoopMatchesTheHostLoopWithOneSyncPerBatch() throws Exception {
        checks.eagerMatchesHost();
    }

    @Test
    @Order(5)
    void replayedLoopMatchesTheHostLoopWithOneSyncPerBatch() throws Exception {
        checks.replayMatchesHost();
    }

    @Test
    @Order(6)
    void unguidedAndTwoImageRequestsRunOnDynamicEngines() throws Exception {
        checks.otherShapes();
    }

    @Test
    @Order(7)
    void deepCacheMatchesTheHostLoop() throws Exception {
        checks.deepCacheMatchesHost();
    }

    @Test
    @Order(8)
    void aMissingEngineIsNamedWithItsBuildCommand() throws Exception {
        checks.missingEngineIsNamed();
    }

    @Test
    @Order(9)
    void aWronglyShapedOutputIsRefusedByName() throws Exception {
        checks.wrongOutputShapeIsRefused();
    }

    @Test
    @Order(10)
    void pastFourShapesTheOldestIsFreedAndLaterRequestsStillMatch() throws Exception {
        checks.evictedShapesAreFreed();
    }
}
