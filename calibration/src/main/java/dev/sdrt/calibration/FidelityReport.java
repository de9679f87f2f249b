package dev.sdrt.calibration;

import dev.sdrt.runtime.tensor.Tensors;
import java.util.Locale;

/**
 * How close a variant (int8, fp8, fp16, token merging, ...) stays to its baseline when both ran with
 * the same seed: cosine similarity and PSNR of the final latents and of the decoded images.
 *
 * <p>Plain arrays in, numbers out, so any caller (calibration tests, {@code sdrt bench}) can use it.
 * PSNR is {@code 10·log10(peak² / MSE)} with the peak stated per method; identical inputs give
 * {@code +Infinity}. Cosine similarity is computed in double; two all-zero vectors count as
 * identical (1), one all-zero vector against a non-zero one as unrelated (0). Image cosine is taken
 * on pixels mapped to [-1, 1], so that two unrelated pictures of similar brightness do not look
 * alike merely because every 8-bit value is positive.
 *
 * @param latentCosine cosine similarity of the final latents (before the VAE)
 * @param latentPsnr PSNR of the final latents in dB, peak = the baseline's value range (max − min)
 * @param imageCosine cosine similarity of the decoded images' pixels in [-1, 1], NaN when no image was compared
 * @param imagePsnr PSNR of the decoded 8-bit images in dB (peak 255), NaN when no image was compared
 */
public record FidelityReport(double latentCosine, double latentPsnr, double imageCosine, double imagePsnr) {

    /** Compares latents only (no decoded images); the image fields are NaN. */
    public static FidelityReport ofLatents(float[] baseline, float[] variant) {
        return new FidelityReport(cosine(baseline, variant), psnr(baseline, variant), Double.NaN, Double.NaN);
    }

    /** Compares latents and one 8-bit RGB image (interleaved or planar, the same layout for both). */
    public static FidelityReport of(float[] baselineLatents, float[] variantLatents, byte[] baselineRgb, byte[] variantRgb) {
        return of(baselineLatents, variantLatents, new byte[][] {baselineRgb}, new byte[][] {variantRgb});
    }

    /** Compares latents and a batch of 8-bit images, image k against image k, as one set of pixels. */
    public static FidelityReport of(float[] baselineLatents, float[] variantLatents, byte[][] baselineImages,
            byte[][] variantImages) {
        checkLengths(baselineImages.length, variantImages.length);
        return new FidelityReport(cosine(baselineLatents, variantLatents), psnr(baselineLatents, variantLatents),
                imageCosine(baselineImages, variantImages), psnr8(baselineImages, variantImages));
    }

    /** Cosine similarity of two equally long vectors ({@link Tensors#cosine}). */
    public static double cosine(float[] a, float[] b) {
        return Tensors.cosine(a, b);
    }

    /** Cosine similarity of two sets of 8-bit images, pixels read as unsigned and mapped to [-1, 1]. */
    public static double imageCosine(byte[][] a, byte[][] b) {
        checkLengths(a.length, b.length);
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int k = 0; k < a.length; k++) {
            checkLengths(a[k].length, b[k].length);
            for (int i = 0; i < a[k].length; i++) {
                double x = (a[k][i] & 0xff) / 127.5 - 1;
                double y = (b[k][i] & 0xff) / 127.5 - 1;
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
        }
        return cosineOf(dot, na, nb);
    }

    private static double cosineOf(double dot, double na, double nb) {
        if (na == 0 && nb == 0) {
            return 1;
        }
        if (na == 0 || nb == 0) {
            return 0;
        }
        return dot / (Math.sqrt(na) * Math.sqrt(nb));
    }

    /**
     * PSNR of {@code variant} against {@code reference} with the reference's value range (max − min)
     * as the peak, the convention of scikit-image's {@code data_range} for float data.
     */
    public static double psnr(float[] reference, float[] variant) {
        checkLengths(reference.length, variant.length);
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (float v : reference) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        double range = reference.length == 0 ? 0 : (double) max - min;
        return psnr(reference, variant, range == 0 ? 1 : range);
    }

    /** PSNR with an explicit peak value (e.g. 2 for images in [-1, 1]). */
    public static double psnr(float[] reference, float[] variant, double peak) {
        checkLengths(reference.length, variant.length);
        double sum = 0;
        for (int i = 0; i < reference.length; i++) {
            double d = (double) reference[i] - variant[i];
            sum += d * d;
        }
        return psnrOf(sum, reference.length, peak);
    }

    /** PSNR of two 8-bit images (peak 255), bytes read as unsigned. */
    public static double psnr8(byte[] reference, byte[] variant) {
        return psnr8(new byte[][] {reference}, new byte[][] {variant});
    }

    /** PSNR of two sets of 8-bit images (peak 255), image k against image k, as one set of pixels. */
    public static double psnr8(byte[][] reference, byte[][] variant) {
        checkLengths(reference.length, variant.length);
        double sum = 0;
        long count = 0;
        for (int k = 0; k < reference.length; k++) {
            checkLengths(reference[k].length, variant[k].length);
            for (int i = 0; i < reference[k].length; i++) {
                double d = (reference[k][i] & 0xff) - (variant[k][i] & 0xff);
                sum += d * d;
            }
            count += reference[k].length;
        }
        return psnrOf(sum, count, 255);
    }

    private static double psnrOf(double squaredErrorSum, long count, double peak) {
        if (count == 0 || squaredErrorSum == 0) {
            return Double.POSITIVE_INFINITY;
        }
        double mse = squaredErrorSum / count;
        return 10 * Math.log10(peak * peak / mse);
    }

    private static void checkLengths(int a, int b) {
        if (a != b) {
            throw new IllegalArgumentException("cannot compare arrays of different lengths: " + a + " and " + b);
        }
    }

    /** One line, e.g. {@code latents cos 0.99871 psnr 31.2 dB | image cos 0.99910 psnr 33.0 dB}. */
    @Override
    public String toString() {
        String latents = String.format(Locale.ROOT, "latents cos %.5f psnr %s", latentCosine, db(latentPsnr));
        if (Double.isNaN(imageCosine)) {
            return latents;
        }
        return latents + String.format(Locale.ROOT, " | image cos %.5f psnr %s", imageCosine, db(imagePsnr));
    }

    private static String db(double value) {
        return Double.isInfinite(value) ? "inf" : String.format(Locale.ROOT, "%.1f dB", value);
    }
}
