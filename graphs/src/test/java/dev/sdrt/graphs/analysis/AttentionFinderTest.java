package dev.sdrt.graphs.analysis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder.Attention;
import dev.sdrt.graphs.analysis.AttentionFinder.Kind;
import dev.sdrt.runtime.Fixtures;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Attention is found by structure in the torch-exported fixtures, whatever their node names. */
class AttentionFinderTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
        // two down-block transformers, one mid, three up: self + cross each
        "tiny_sd_unet, 6, 6, 0",
        // transformer_layers_per_block (1,2) doubles the blocks at the lower level
        "tiny_sdxl_unet, 12, 12, 0",
        "tiny_vae_decoder, 1, 0, 0",
        "tiny_clip_text, 5, 0, 0",
        "tiny_sd3_transformer, 0, 0, 2",
    })
    void findsEveryAttentionInTheFixture(String fixture, int self, int cross, int joint) throws Exception {
        OnnxModel model = OnnxModel.load(Fixtures.model(fixture).resolve("model.onnx"));
        List<Attention> found = AttentionFinder.find(model.graph());
        Map<Kind, Long> kinds = found.stream().collect(Collectors.groupingBy(Attention::kind, Collectors.counting()));
        assertThat(kinds.getOrDefault(Kind.SELF, 0L)).isEqualTo(self);
        assertThat(kinds.getOrDefault(Kind.CROSS, 0L)).isEqualTo(cross);
        assertThat(kinds.getOrDefault(Kind.JOINT, 0L)).isEqualTo(joint);
        for (Attention a : found) {
            assertThat(a.scores().opType()).isEqualTo("MatMul");
            assertThat(a.context().opType()).isEqualTo("MatMul");
            if (a.kind() != Kind.JOINT) {
                assertThat(a.qProjection()).as("q projection of %s", a.softmax().name()).isNotNull();
                assertThat(a.kProjection()).isNotNull();
                assertThat(a.vProjection()).isNotNull();
                assertThat(a.projections()).containsExactlyElementsOf(
                        new java.util.LinkedHashSet<>(List.of(a.qProjection(), a.kProjection(), a.vProjection())));
            } else {
                // q, k and v of both streams, traced through the Concat that joins them
                assertThat(a.qProjection()).isNull();
                assertThat(a.projections()).as("projections of %s", a.softmax().name()).hasSize(6)
                        .allMatch(p -> p.is("MatMul") || p.is("Gemm"));
            }
        }
    }
}
