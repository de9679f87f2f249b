package dev.sdrt.runtime.image;

import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/**
 * An 8-bit RGB image held row-major, 3 bytes per pixel: what image-to-image starts from. Reading
 * goes through ImageIO (PNG, JPEG, BMP, GIF); alpha is dropped, grey becomes RGB.
 */
public record RgbImage(int width, int height, byte[] rgb) {

    public RgbImage {
        if (width <= 0 || height <= 0 || rgb.length != (long) width * height * 3) {
            throw new IllegalArgumentException("RGB buffer of " + rgb.length + " bytes does not fit " + width + "x" + height);
        }
    }

    public static RgbImage read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such image file");
        }
        BufferedImage image = ImageIO.read(file.toFile());
        if (image == null) {
            throw new IOException(file + ": not an image this runtime can read (PNG, JPEG, BMP or GIF)");
        }
        return of(image);
    }

    static RgbImage of(BufferedImage image) {
        int w = image.getWidth();
        int h = image.getHeight();
        byte[] rgb = new byte[w * h * 3];
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            image.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                int p = (y * w + x) * 3;
                rgb[p] = (byte) (row[x] >> 16);
                rgb[p + 1] = (byte) (row[x] >> 8);
                rgb[p + 2] = (byte) row[x];
            }
        }
        return new RgbImage(w, h, rgb);
    }

    /** This image scaled to {@code w}×{@code h} (bilinear), or itself when it already has that size. */
    public RgbImage resized(int w, int h) {
        if (w == width && h == height) {
            return this;
        }
        BufferedImage target = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        var g = target.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            g.drawImage(toBufferedImage(), 0, 0, w, h, null);
        } finally {
            g.dispose();
        }
        return of(target);
    }

    private BufferedImage toBufferedImage() {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[width];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int p = (y * width + x) * 3;
                row[x] = (rgb[p] & 0xff) << 16 | (rgb[p + 1] & 0xff) << 8 | (rgb[p + 2] & 0xff);
            }
            image.setRGB(0, y, width, 1, row, 0, width);
        }
        return image;
    }

    /** The image as [3, height, width] floats in [-1, 1], the range the VAE encoder takes. */
    public float[] toChwSigned() {
        int plane = width * height;
        float[] chw = new float[3 * plane];
        for (int p = 0; p < plane; p++) {
            for (int c = 0; c < 3; c++) {
                chw[c * plane + p] = (rgb[p * 3 + c] & 0xff) / 127.5f - 1f;
            }
        }
        return chw;
    }
}
