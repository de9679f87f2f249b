package dev.sdrt.enginebuilder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.runtime.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class ProfileDeriverTest {

    private static EngineBuildRequest.Builder request() {
        return EngineBuildRequest.builder(Path.of("model.onnx"));
    }

    private static ModelTensor tensor(String name, long[] shape, String... dimNames) {
        return new ModelTensor(name, "float32", shape, dimNames.length == 0 ? List.of() : List.of(dimNames));
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_sd_unet", "tiny_sdxl_unet", "tiny_vae_decoder", "tiny_clip_text", "tiny_sd3_transformer"})
    void staticFixturesKeepTheirShapes(String fixture) throws IOException {
        OnnxModel model = OnnxModel.load(Fixtures.model(fixture).resolve("model.onnx"));
        OnnxSummary summary = OnnxSummary.of(model);
        // Requested sizes differ from the fixtures' (batch 2, 16x16, 8-12 tokens): fixed dims win.
        ShapeProfile profile = ProfileDeriver.derive(summary.inputs(),
                request().batch(new DimRange(1, 2, 4)).size(DimRange.fixed(64)).build());

        assertThat(profile.isStatic()).isTrue();
        assertThat(profile.inputs().keySet())
                .containsExactlyElementsOf(summary.inputs().stream().map(ModelTensor::name).toList());
        for (ModelTensor input : summary.inputs()) {
            assertThat(profile.input(input.name()).opt()).as(input.name()).isEqualTo(input.shape());
        }
    }

    @Test
    void fixedDimsThatDisagreeWithTheRequestAreNoted() throws IOException {
        OnnxSummary unet = OnnxSummary.read(Fixtures.model("tiny_sd_unet").resolve("model.onnx"));
        ShapeProfile profile = ProfileDeriver.derive(unet.inputs(), request().batch(1).size(DimRange.fixed(64)).build());
        assertThat(profile.notes()).anySatisfy(note -> assertThat(note).contains("sample", "fixed at 16", "height"));
    }

    @Test
    void sdrtDimensionNamesTakeTheRequestRanges() {
        List<ModelTensor> inputs = List.of(
                tensor("sample", new long[] {-1, 4, -1, -1}, "batch", "", "height", "width"),
                tensor("timestep", new long[] {-1}, "batch"),
                tensor("encoder_hidden_states", new long[] {-1, -1, 768}, "batch", "sequence", ""));
        ShapeProfile profile = ProfileDeriver.derive(inputs, request()
                .batch(new DimRange(1, 2, 4))
                .height(new DimRange(32, 64, 128))
                .width(new DimRange(48, 64, 96))
                .tokens(DimRange.fixed(77))
                .build());

        assertThat(profile.input("sample").min()).containsExactly(1, 4, 32, 48);
        assertThat(profile.input("sample").opt()).containsExactly(2, 4, 64, 64);
        assertThat(profile.input("sample").max()).containsExactly(4, 4, 128, 96);
        assertThat(profile.input("timestep").max()).containsExactly(4);
        assertThat(profile.input("encoder_hidden_states").opt()).containsExactly(2, 77, 768);
        assertThat(profile.isStatic()).isFalse();
    }

    @Test
    void inputNameConventionsCoverUnnamedTorchDims() {
        // torch.onnx.export names dynamic axes after the input ("sample_dim_0") unless told otherwise.
        List<ModelTensor> inputs = List.of(
                tensor("hidden_states", new long[] {-1, 16, -1, -1}, "hidden_states_dim_0", "", "hidden_states_dim_2", "hidden_states_dim_3"),
                tensor("encoder_hidden_states", new long[] {-1, -1, 4096}),
                tensor("pooled_projections", new long[] {-1, 2048}),
                tensor("timestep", new long[] {-1}),
                tensor("text_embeds", new long[] {-1, 1280}),
                tensor("time_ids", new long[] {-1, 6}),
                tensor("latent_sample", new long[] {-1, 4, -1, -1}));
        ShapeProfile profile = ProfileDeriver.derive(inputs, request()
                .batch(new DimRange(1, 2, 2)).size(new DimRange(64, 128, 128)).tokens(DimRange.fixed(333)).build());

        assertThat(profile.input("hidden_states").max()).containsExactly(2, 16, 128, 128);
        assertThat(profile.input("encoder_hidden_states").opt()).containsExactly(2, 333, 4096);
        assertThat(profile.input("pooled_projections").min()).containsExactly(1, 2048);
        assertThat(profile.input("text_embeds").opt()).containsExactly(2, 1280);
        assertThat(profile.input("time_ids").max()).containsExactly(2, 6);
        assertThat(profile.input("latent_sample").min()).containsExactly(1, 4, 64, 64);
    }

    @Test
    void clipInputIdsTakeBatchAndTokens() {
        ShapeProfile profile = ProfileDeriver.derive(List.of(tensor("input_ids", new long[] {-1, -1})),
                request().batch(new DimRange(1, 1, 8)).build());
        assertThat(profile.input("input_ids").min()).containsExactly(1, 77);
        assertThat(profile.input("input_ids").max()).containsExactly(8, 77);
    }

    @Test
    void staticRequestCollapsesRangesToOpt() {
        List<ModelTensor> inputs = List.of(tensor("sample", new long[] {-1, 4, -1, -1}, "batch", "", "height", "width"));
        ShapeProfile profile = ProfileDeriver.derive(inputs, request()
                .batch(new DimRange(1, 2, 4)).size(new DimRange(32, 64, 128)).staticShapes(true).build());
        assertThat(profile.isStatic()).isTrue();
        assertThat(profile.input("sample").max()).containsExactly(2, 4, 64, 64);
    }

    @Test
    void unresolvableDimsAreNamedWithTheWayToFixThem() {
        List<ModelTensor> inputs = List.of(
                tensor("control_hint", new long[] {-1, -1, 8}, "batch", "seq", ""),
                tensor("sample", new long[] {-1, -1, -1, -1}, "batch", "", "height", "width"));
        assertThatThrownBy(() -> ProfileDeriver.derive(inputs, request().build()))
                .isInstanceOf(ProfileException.class)
                .hasMessageContaining("input 'control_hint'")
                .hasMessageContaining("dynamic dimension 1 ('seq')")
                .hasMessageContaining("'control_hint:1' or 'seq'")
                .hasMessageContaining("input 'sample'")
                .hasMessageContaining("dynamic dimension 1")
                .hasMessageContaining("dim(");
    }

    @Test
    void overridesResolveUnknownDims() {
        List<ModelTensor> inputs = List.of(
                tensor("control_hint", new long[] {-1, -1, 8}, "batch", "seq", ""),
                tensor("sample", new long[] {-1, -1, -1, -1}, "batch", "", "height", "width"));
        ShapeProfile profile = ProfileDeriver.derive(inputs, request()
                .dim("seq", new DimRange(16, 32, 64))
                .dim("sample:1", DimRange.fixed(9))
                .build());
        assertThat(profile.input("control_hint").opt()).containsExactly(1, 32, 8);
        assertThat(profile.input("sample").opt()).containsExactly(1, 9, 64, 64);
    }

    @Test
    void modelReadThroughOnnxModelKeepsSymbolicNames() {
        OnnxSummary summary = OnnxSummary.of(TestModels.dynamicUnetLike(DataType.FLOAT));
        assertThat(summary.input("sample").dimNames()).containsExactly("batch", "", "height", "width");
        ShapeProfile profile = ProfileDeriver.derive(summary.inputs(), request().batch(new DimRange(1, 2, 4)).build());
        assertThat(profile.input("encoder_hidden_states").max()).containsExactly(4, 77, 32);
    }
}
