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
     *
     * <p>On a device loop ({@link Pipeline#openOnDevice}) the device denoises and decodes back to
     * back, so {@code denoiseMs} covers both and {@code vaeDecoderMs} is 0; {@code denoiseMs} then
     * splits into the host's {@code deviceUploadMs} (staging and queueing the one upload),
     * {@code deviceEnqueueMs} (queueing every launch, or the replay) and {@code deviceWaitMs} (waiting
     * for the device and reading back), and {@code synchronizations} counts the device waits (1 per
     * batch). All four are 0 on the host loop.
     */
    public record Timings(double textEncoderMs, double vaeEncoderMs, double denoiseMs, double vaeDecoderMs, int steps,
            long synchronizations, double deviceUploadMs, double deviceEnqueueMs, double deviceWaitMs) {

        /** Host-loop timings. */
        public Timings(double textEncoderMs, double vaeEncoderMs, double denoiseMs, double vaeDecoderMs, int steps) {
            this(textEncoderMs, vaeEncoderMs, denoiseMs, vaeDecoderMs, steps, 0, 0, 0, 0);
        }

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
