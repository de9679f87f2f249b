package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.image.Png;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The result of one request: 8-bit RGB images (one per batch item), the final latents and the
 * generation parameters (also written into each PNG's text chunks).
 */
public record GeneratedImage(int width, int height, byte[][] rgb, Tensor latents, Map<String, String> parameters,
        Timings timings) {

    /**
     * Wall-clock milliseconds per stage; {@code vaeEncoderMs} is 0 for text to image, and
     * {@code steps} counts the steps that ran (fewer than requested for image to image).
     */
    public record Timings(double textEncoderMs, double vaeEncoderMs, double denoiseMs, double vaeDecoderMs, int steps) {
        public double totalMs() {
            return textEncoderMs + vaeEncoderMs + denoiseMs + vaeDecoderMs;
        }
    }

    public int count() {
        return rgb.length;
    }

    /** Writes image {@code index} as PNG with the parameters in iTXt chunks. */
    public void writePng(int index, Path file) throws IOException {
        Png.write(file, width, height, rgb[index], parameters);
    }
}
