package dev.sdrt.runtime.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RgbImageTest {
    @TempDir
    Path tmp;

    @Test
    void readsWhatPngWrites() throws Exception {
        byte[] rgb = new byte[5 * 3 * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) (i * 17);
        }
        Path file = tmp.resolve("a.png");
        Png.write(file, 5, 3, rgb, Map.of("k", "v"));
        RgbImage image = RgbImage.read(file);
        assertThat(image.width()).isEqualTo(5);
        assertThat(image.height()).isEqualTo(3);
        assertThat(image.rgb()).isEqualTo(rgb);
    }

    @Test
    void mapsBytesToSignedUnitRangePlanarly() {
        RgbImage image = new RgbImage(2, 1, new byte[] {0, (byte) 255, 0, (byte) 255, 0, (byte) 255});
        float[] chw = image.toChwSigned();
        assertThat(chw).containsExactly(-1f, 1f, 1f, -1f, -1f, 1f);
    }

    @Test
    void resizesAndKeepsAFlatColourFlat() {
        byte[] rgb = new byte[8 * 8 * 3];
        for (int i = 0; i < rgb.length; i += 3) {
            rgb[i] = 10;
            rgb[i + 1] = 100;
            rgb[i + 2] = (byte) 200;
        }
        RgbImage small = new RgbImage(8, 8, rgb).resized(4, 6);
        assertThat(small.width()).isEqualTo(4);
        assertThat(small.height()).isEqualTo(6);
        for (int i = 0; i < small.rgb().length; i += 3) {
            assertThat(small.rgb()[i]).isEqualTo((byte) 10);
            assertThat(small.rgb()[i + 2]).isEqualTo((byte) 200);
        }
    }

    @Test
    void saysWhatIsWrongWithAFile() throws Exception {
        assertThatThrownBy(() -> RgbImage.read(tmp.resolve("missing.png"))).isInstanceOf(NoSuchFileException.class);
        Path junk = tmp.resolve("junk.png");
        Files.writeString(junk, "not an image");
        assertThatThrownBy(() -> RgbImage.read(junk)).hasMessageContaining("not an image");
    }
}
