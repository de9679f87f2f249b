package dev.sdrt.runtime.trt;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdrt.runtime.profile.NodeProfile;
import java.util.List;
import org.junit.jupiter.api.Test;

class KernelProfileTest {

    @Test
    void reportPutsTheReplayTimesBeforeTheTables() {
        String conv = "sm80_xmma_fprop_implicit_gemm_i8i8_i8i32_f32_nhwc";
        NodeProfile nodes = NodeProfile.fromRuns(List.of(conv, "memset"),
                List.of(KernelClass.ofKernel(conv).label(), KernelClass.ofMemoryNode().label()), new double[][] {{2.0, 0.1}});
        String markdown = new KernelProfile(nodes, 1.9, 2.3).toMarkdown(5);
        assertTrue(markdown.startsWith("2 graph nodes, medians of 1 replays. Plain CUDA-graph replay 1.900 ms; with an event"
                + " after every node 2.300 ms (the events' cost is spread over the rows below, which sum to 2.100 ms)."), markdown);
        assertTrue(markdown.contains("| convolution int8 | 1 | 2.000 | 95.2% |"), markdown);
        assertTrue(markdown.contains("| memset/memcpy | 1 | 0.100 | 4.8% |"), markdown);
    }
}
