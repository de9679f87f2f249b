package dev.sdrt.runtime.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;

class PngTest {

    @Test
    void pixelsAndTextSurviveADecodeByImageIo(@TempDir Path tmp) throws Exception {
        int w = 5;
        int h = 3;
        byte[] rgb = new byte[w * h * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) (i * 17);
        }
        Map<String, String> text = new LinkedHashMap<>();
        text.put("prompt", "a café at dusk, 東京");
        text.put("seed", "42");
        Path file = tmp.resolve("img.png");
        Png.write(file, w, h, rgb, text);

        BufferedImage img = ImageIO.read(file.toFile());
        assertThat(img.getWidth()).isEqualTo(w);
        assertThat(img.getHeight()).isEqualTo(h);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                int expected = ((rgb[i] & 0xff) << 16) | ((rgb[i + 1] & 0xff) << 8) | (rgb[i + 2] & 0xff);
                assertThat(img.getRGB(x, y) & 0xffffff).isEqualTo(expected);
            }
        }
        assertThat(readText(Files.readAllBytes(file))).containsEntry("prompt", "a café at dusk, 東京").containsEntry("seed", "42");
        try (var files = Files.list(tmp)) {
            assertThat(files).hasSize(1);
        }
    }

    @Test
    void rejectsMismatchedBuffersAndBadKeys() {
        assertThatThrownBy(() -> Png.encode(2, 2, new byte[11], Map.of())).hasMessageContaining("2x2");
        assertThatThrownBy(() -> Png.encode(1, 1, new byte[3], Map.of("", "x"))).hasMessageContaining("1 to 79");
    }

    private static Map<String, String> readText(byte[] png) throws Exception {
        Map<String, String> out = new LinkedHashMap<>();
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(png))) {
            ImageReader reader = ImageIO.getImageReaders(in).next();
            reader.setInput(in);
            IIOMetadata meta = reader.getImageMetadata(0);
            Node root = meta.getAsTree("javax_imageio_png_1.0");
            for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
                if (n.getNodeName().equals("iTXt")) {
                    for (Node e = n.getFirstChild(); e != null; e = e.getNextSibling()) {
                        NamedNodeMap a = e.getAttributes();
                        out.put(a.getNamedItem("keyword").getNodeValue(), a.getNamedItem("text").getNodeValue());
                    }
                }
            }
        }
        return out;
    }
}
