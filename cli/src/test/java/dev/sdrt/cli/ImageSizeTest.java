package dev.sdrt.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.cli.bench.BenchSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The one WxH parser behind generate's --size, build-pipeline's --size and --sizes, and bench's --sizes. */
class ImageSizeTest {

    @Test
    void readsWidthThenHeight() {
        assertThat(ImageSize.parse("768x512", "--size", 1)).isEqualTo(new ImageSize(768, 512));
        assertThat(ImageSize.parse("768x512", "--size", 1)).hasToString("768x512");
    }

    @Test
    void takesAnUpperCaseXAndSpacesAroundEitherSide() {
        assertThat(ImageSize.parse("768X512", "--size", 1)).isEqualTo(new ImageSize(768, 512));
        assertThat(ImageSize.parse(" 768 x 512 ", "--size", 1)).isEqualTo(new ImageSize(768, 512));
    }

    @Test
    void zeroIsTheModelsDefaultOnlyWhereTheMinimumAllowsIt() {
        assertThat(ImageSize.parse("0x0", "--size", 0)).isEqualTo(new ImageSize(0, 0));
        assertThatThrownBy(() -> ImageSize.parse("0x512", "--size", 1)).hasMessage("--size must look like 512x512, not '0x512'");
        assertThatThrownBy(() -> ImageSize.parse("512x0", "--size", 1)).hasMessage("--size must look like 512x512, not '512x0'");
    }

    @ParameterizedTest
    @ValueSource(strings = {"-8x512", "512x-8"})
    void refusesNegativeSides(String text) {
        assertThatThrownBy(() -> ImageSize.parse(text, "--size", 0)).hasMessage("--size must look like 512x512, not '" + text + "'");
    }

    @ParameterizedTest
    @ValueSource(strings = {"big", "512", "512x", "x512", "512x512x", "512xx512", "512by512", "1.5x2", "", "x"})
    void refusesMalformedText(String text) {
        assertThatThrownBy(() -> ImageSize.parse(text, "--sizes", 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--sizes must look like 512x512, not '" + text + "'");
    }

    @ParameterizedTest
    @ValueSource(strings = {"2147483648x512", "512x99999999999"})
    void refusesSidesBeyondInt(String text) {
        assertThatThrownBy(() -> ImageSize.parse(text, "--size", 1)).hasMessage("--size must look like 512x512, not '" + text + "'");
    }

    @Test
    void benchReadsWxHTheSameWayAndAlsoTakesASquareSide() {
        assertThat(BenchSettings.parseSizes("512, 768X512, 64 x 32, 512x512")).containsExactly(new BenchSettings.Size(512, 512),
                new BenchSettings.Size(768, 512), new BenchSettings.Size(64, 32));
        for (String bad : new String[] {"0", "0x512", "-8", "512x512x", "2147483648"}) {
            assertThatThrownBy(() -> BenchSettings.parseSizes(bad))
                    .hasMessage("--sizes: '" + bad + "' is not a size (use 512 or 768x512)");
        }
    }
}
