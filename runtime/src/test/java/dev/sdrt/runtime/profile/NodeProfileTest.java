package dev.sdrt.runtime.profile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class NodeProfileTest {

    private static final String CONV_INT8 = "sm80_xmma_fprop_implicit_gemm_i8i8_i8i32_f32_nhwc";
    private static final String CONV_FP16 = "sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwc";
    private static final String ATTENTION = "fmha_v2_flash_attention_fp16_64_64_S_qkv_128_sm90_kernel";

    private static NodeProfile sample() {
        List<String> names = List.of(CONV_INT8, CONV_FP16, CONV_INT8, ATTENTION, "memset");
        List<String> groups = List.of("convolution int8", "convolution fp16", "convolution int8", "attention fp16",
                "memset/memcpy");
        double[][] runs = {
            {1.0, 2.0, 1.0, 4.0, 0.1},
            {3.0, 2.2, 1.2, 4.4, 0.1},
            {1.2, 1.8, 0.8, 3.6, 0.1},
        };
        return NodeProfile.fromRuns(names, groups, runs);
    }

    @Test
    void eachNodeKeepsItsMedianOverTheRuns() {
        NodeProfile profile = sample();
        assertEquals(5, profile.nodes().size());
        assertEquals(1.2, profile.nodes().get(0).millis(), 1e-12);
        assertEquals(2.0, profile.nodes().get(1).millis(), 1e-12);
        assertEquals(1.0, profile.nodes().get(2).millis(), 1e-12);
        assertEquals(8.3, profile.totalMillis(), 1e-9);
        assertEquals(3, profile.runs());
    }

    @Test
    void groupsAddUpTheirNodesSlowestFirst() {
        List<NodeProfile.Group> classes = sample().byGroup();
        assertEquals(List.of("attention fp16", "convolution int8", "convolution fp16", "memset/memcpy"),
                classes.stream().map(NodeProfile.Group::label).toList());
        NodeProfile.Group int8 = classes.get(1);
        assertEquals(2, int8.count());
        assertEquals(2.2, int8.millis(), 1e-9);
        NodeProfile.Group byName = sample().byName().get(1);
        assertEquals(CONV_INT8, byName.label());
        assertEquals(2, byName.count());
    }

    @Test
    void tablesNameTheGroupsAndTheSlowestNodes() {
        String markdown = sample().tables("kernel class", "slowest kernels", 2);
        assertTrue(markdown.startsWith("| kernel class | nodes | ms | share |"), markdown);
        assertTrue(markdown.contains("| attention fp16 | 1 | 4.000 | 48.2% |"), markdown);
        assertTrue(markdown.contains("| convolution int8 | 2 | 2.200 | 26.5% |"), markdown);
        assertTrue(markdown.contains("| slowest kernels (2 of 4 distinct) | calls | ms | share |"), markdown);
        // top 2 by name: the attention kernel and the int8 convolution; the fp16 one is cut.
        assertTrue(markdown.contains("| " + ATTENTION + " | 1 |"), markdown);
        assertTrue(!markdown.contains("| " + CONV_FP16 + " |"), markdown);
    }

    @Test
    void longNamesAreShortenedAndPipesEscaped() {
        String name = "k|" + "x".repeat(200);
        String shortened = NodeProfile.shorten(name);
        assertEquals(110, shortened.length());
        assertTrue(shortened.startsWith("k\\|x"));
        assertTrue(shortened.endsWith("..."));
    }

    @Test
    void aProfileNeedsARun() {
        assertThrows(IllegalArgumentException.class,
                () -> NodeProfile.fromRuns(List.of(), List.of(), new double[0][]));
    }
}
