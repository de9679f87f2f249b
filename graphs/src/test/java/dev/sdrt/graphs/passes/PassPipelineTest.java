package dev.sdrt.graphs.passes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class PassPipelineTest {
    @TempDir
    Path dir;

    @Test
    void parsesNamesAndOptions() {
        PassPipeline pipeline = PassPipeline.parse(" cleanup , fuse-qkv,fp16:io=fp16:keep=InstanceNormalization|Softmax,bf16");

        assertThat(pipeline.passes()).extracting(GraphPass::name).containsExactly("cleanup", "fuse-qkv", "fp16", "bf16");
        PrecisionPass fp16 = (PrecisionPass) pipeline.passes().get(2);
        assertThat(fp16.target()).isEqualTo(DataType.FLOAT16);
        assertThat(fp16.keep()).containsExactlyInAnyOrder("InstanceNormalization", "Softmax");
        assertThat(((PrecisionPass) pipeline.passes().get(3)).keep()).isEqualTo(PrecisionPass.DEFAULT_KEEP);
        assertThat(PassPipeline.registeredPasses()).containsExactly("static-shapes", "cleanup", "fuse-qkv", "tome", "fp16", "bf16", "channels-last", "qdq");
    }

    @ParameterizedTest(name = "''{0}''")
    @CsvSource(delimiter = '#', value = {
        "''#empty pass spec; passes are [static-shapes, cleanup, fuse-qkv, tome, fp16, bf16, channels-last, qdq]",
        "cleanup,,fp16#empty pass name in spec 'cleanup,,fp16'; passes are [static-shapes, cleanup, fuse-qkv, tome, fp16, bf16, channels-last, qdq]",
        "cleanup,fuse_qkv#unknown pass 'fuse_qkv'; passes are [static-shapes, cleanup, fuse-qkv, tome, fp16, bf16, channels-last, qdq]",
        "fp16:keeps=Softmax#unknown option 'keeps' for pass fp16; options of fp16 are [io, keep]",
        "cleanup:ratio=0.5#unknown option 'ratio' for pass cleanup; options of cleanup are (none)",
        "fp16:io#option 'io' of pass fp16 is not key=value; options of fp16 are [io, keep]",
        "fp16:io=fp16:io=fp32#option 'io' given twice for pass fp16",
        "bf16:io=fp16#option io of pass bf16 must be fp32 or bf16, got 'fp16'",
    })
    void rejectsBadSpecsWithTheValidChoices(String spec, String message) {
        assertThatThrownBy(() -> PassPipeline.parse(spec)).isInstanceOf(IllegalArgumentException.class).hasMessage(message);
    }

    /** The exact passes together keep every output within 1e-5; then fp16 on top stays within its bound. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text", "tiny_sd3_transformer"})
    void exactPassesCombineAndFp16Follows(String fixture) {
        OnnxModel model = PassTesting.load(fixture);

        List<PassResult> exact = PassPipeline.parse("cleanup,fuse-qkv").run(model);

        assertThat(exact).extracting(PassResult::pass).containsExactly("cleanup", "fuse-qkv");
        assertThat(exact.get(1).nodesBefore()).isEqualTo(exact.get(0).nodesAfter());
        assertThat(PassTesting.maxRelDiff(PassTesting.run(model, fixture, dir), PassTesting.originalOutputs(fixture)))
                .isLessThanOrEqualTo(PassTesting.EXACT);
        assertThat(PassPipeline.parse("cleanup,fuse-qkv").run(model)).extracting(PassResult::changes).containsOnly(0);

        List<PassResult> half = PassPipeline.parse("fp16").run(model);

        OnnxChecker.check(PassTesting.save(model, dir));
        assertThat(PassTesting.maxRelDiff(PassTesting.run(model, fixture, dir), PassTesting.originalOutputs(fixture)))
                .isLessThanOrEqualTo(PrecisionPassTest.FP16_BOUND);
        String summary = PassPipeline.summary(List.of(exact.get(0), exact.get(1), half.get(0)));
        assertThat(summary.lines().findFirst()).hasValueSatisfying(header -> assertThat(header)
                .contains("pass", "matched", "changes", "nodes", "parameters", "time ms"));
        assertThat(summary).contains("cleanup", "fuse-qkv", "fp16",
                exact.get(0).nodesBefore() + " → " + exact.get(0).nodesAfter());
    }
}
