package dev.sdrt.cli.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.pipeline.PipelineFamily;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** The pieces of {@code sdrt bench}: variant names to pass specs, statistics, fidelity, chart axes. */
class BenchPartsTest {
    static final Set<String> ALL = Set.of("cleanup", "fuse-qkv", "fp16", "bf16", "tome", "channels-last", "qdq");
    static final Consumer<String> ANY = spec -> { };

    static Variant parse(String name) {
        return Variant.parse(name, ALL, null, ANY);
    }

    @Test
    void variantPartsMapToPassSpecsWithPrecisionLastWithoutQdq() {
        assertThat(parse("fp32").passes()).isEmpty();
        assertThat(parse("fp32+fuse-qkv").passes()).isEqualTo("fuse-qkv");
        assertThat(parse("fp32+tome:0.5").passes()).isEqualTo("tome:ratio=0.5");
        assertThat(parse("fp16+tome:0.3+fuse-qkv+channels-last").passes()).isEqualTo("tome:ratio=0.3,fuse-qkv,channels-last,fp16");
        assertThat(parse("bf16").passes()).isEqualTo("bf16");
        assertThat(parse("fp32+fuse-qkv").runnable()).isTrue();
        assertThat(parse("fp32+tome:0.5:max_downsample=2").passes()).isEqualTo("tome:ratio=0.5:max_downsample=2");
        assertThat(parse("fp32+tome:0.5:max_downsample=0").reason()).contains("max_downsample=D");
        assertThat(parse("fp32+tome:0.5:stride=2").reason()).contains("max_downsample=D");
    }

    /** tome plans on static token counts, so its variants are built per cell; the others once. */
    @Test
    void variantsWithShapeDependentPassesArePerCell() {
        assertThat(parse("fp32+tome:0.5").perCell()).isTrue();
        assertThat(parse("fp16+tome:0+deepcache:3").perCell()).isTrue();
        assertThat(parse("fp32+fuse-qkv+channels-last").perCell()).isFalse();
        assertThat(parse("fp32").perCell()).isFalse();
        assertThat(parse("fp32+deepcache:3").perCell()).isFalse();
        assertThat(parse("fp32+bogus").perCell()).isFalse();

        VariantFolders.Pin guided = VariantFolders.Pin.of(new BenchSettings.Size(64, 32), 3, 7.5, 8);
        assertThat(guided).isEqualTo(new VariantFolders.Pin(new BenchSettings.Size(64, 32), 6, 8, 4));
        assertThat(guided.tag()).isEqualTo("@64x32-b6");
        assertThat(guided.describe()).isEqualTo("batch=6;height=4;width=8");
        assertThat(VariantFolders.Pin.of(new BenchSettings.Size(32, 32), 2, 1.0, 2).batch()).as("no guidance").isEqualTo(2);
    }

    @Test
    void variantsThatCannotRunSayWhy() {
        assertThat(parse("fp32+bogus").status()).isEqualTo(Variant.Status.FAILED);
        assertThat(parse("fp32+bogus").reason()).contains("unknown part 'bogus'");
        assertThat(parse("fp16+bf16").reason()).contains("two precisions");
        assertThat(parse("fp32+tome:0.9").reason()).contains("[0, 0.75]");
        assertThat(parse("fp32+tome:x").reason()).contains("tome needs a ratio");
        Variant cache = parse("fp16+tome:0.5+deepcache:3");
        assertThat(cache.status()).isEqualTo(Variant.Status.RUNNABLE);
        assertThat(cache.deepCache()).isEqualTo(3);
        assertThat(parse("fp32+deepcache:0").status()).isEqualTo(Variant.Status.FAILED);
        assertThat(parse("int8").reason()).contains("calibration scales").contains("--scales");
        assertThat(Variant.parse("fp32+tome:0.5", Set.of("fuse-qkv"), null, ANY).reason()).contains("'tome' is not in this build");
        assertThat(Variant.parse("int8", Set.of("fuse-qkv"), null, ANY).reason()).contains("qdq pass");
        Variant rejected = Variant.parse("fp32+fuse-qkv", ALL, null, spec -> {
            throw new IllegalArgumentException("nope");
        });
        assertThat(rejected.reason()).contains("nope");
    }

    @Test
    void int8AndFp8UseTheScalesFile() {
        Path scales = Path.of("scales.json");
        assertThat(Variant.parse("int8", ALL, scales, ANY).passes()).startsWith("qdq:scales=").endsWith("scales.json");
        List<String> tried = new ArrayList<>();
        Variant fp8 = Variant.parse("fp16+fp8", ALL, scales, spec -> {
            tried.add(spec);
            if (spec.contains(":type=") || spec.contains(":format=")) {
                throw new IllegalArgumentException("unknown option 'x' for pass qdq");
            }
        });
        assertThat(fp8.passes()).contains(":dtype=fp8").startsWith("fp16,qdq:");
    }

    /** Q/DQ go on the half graph (half scales, no Casts between a DequantizeLinear and its layer). */
    @Test
    void precisionRunsBeforeQdqAndLastOtherwise() {
        Path scales = Path.of("scales.json");
        String qdq = "qdq:scales=" + scales.toAbsolutePath();
        assertThat(Variant.parse("fp16+fuse-qkv+int8", ALL, scales, ANY).passes()).isEqualTo("fuse-qkv,fp16," + qdq);
        assertThat(Variant.parse("int8+channels-last+bf16", ALL, scales, ANY).passes()).isEqualTo("bf16," + qdq + ",channels-last");
        assertThat(Variant.parse("fp32+int8", ALL, scales, ANY).passes()).isEqualTo(qdq);
        assertThat(Variant.precisionPosition(List.of("fuse-qkv", "tome:ratio=0.5"))).isEqualTo(2);
    }

    @Test
    void defaultsAndLists() {
        assertThat(Variant.defaultNames(Set.of("fuse-qkv"))).containsExactly("fp32", "fp32+fuse-qkv", "fp32+tome:0.3", "fp32+tome:0.5");
        assertThat(Variant.defaultNames(ALL)).contains("fp32+channels-last");
        assertThat(Variant.defaultNames(ALL, PipelineFamily.SD)).isEqualTo(Variant.defaultNames(ALL));
        assertThat(Variant.defaultNames(ALL, PipelineFamily.SDXL)).containsExactly("fp32", "fp32+fuse-qkv",
                "fp32+tome:0.3:max_downsample=2", "fp32+tome:0.5:max_downsample=2", "fp32+channels-last");
        assertThat(Variant.defaultNames(ALL, PipelineFamily.SD3)).containsExactly("fp32", "fp32+fuse-qkv", "fp32+channels-last");
        assertThat(Variant.splitList("fp32, fp32+fuse-qkv,fp32")).containsExactly("fp32", "fp32+fuse-qkv");
        assertThat(BenchSettings.parseSizes("512, 768x512")).containsExactly(new BenchSettings.Size(512, 512),
                new BenchSettings.Size(768, 512));
        assertThatThrownBy(() -> BenchSettings.parseSizes("big")).hasMessageContaining("not a size");
        assertThat(BenchSettings.parseBatches("1,2,4")).containsExactly(1, 2, 4);
        assertThatThrownBy(() -> BenchSettings.parseBatches("0")).hasMessageContaining("between 1 and 64");
    }

    @Test
    void statsGiveMedianAndSpread() {
        Stats s = Stats.of(new double[] {4, 1, 3, 2});
        assertThat(s.median()).isEqualTo(2.5);
        assertThat(s.min()).isEqualTo(1);
        assertThat(s.max()).isEqualTo(4);
        assertThat(s.q1()).isEqualTo(1.75);
        assertThat(s.q3()).isEqualTo(3.25);
        assertThat(Stats.of(new double[] {7}).median()).isEqualTo(7);
    }

    @Test
    void chartAxesHaveRoundTicks() {
        assertThat(BenchChart.ticks(-12, 48)).contains(0.0, 10.0, 40.0);
        assertThat(BenchChart.step(0.9990, 1.0001)).isEqualTo(2e-4, org.assertj.core.data.Offset.offset(1e-12));
        double[] r = BenchChart.padded(1, 1, 1e-4);
        assertThat(r[0]).isLessThan(1);
        assertThat(r[1]).isGreaterThan(1);
    }

    @Test
    void folderNamesAreSafe() {
        assertThat(VariantFolders.folderName("fp16+tome:0.5")).isEqualTo("fp16+tome-0.5");
        assertThat(VariantFolders.folderName("a/b c")).isEqualTo("a-b-c");
    }
}
