package dev.sdrt.cli.bench;

/**
 * How close a variant's output is to the baseline's for the same prompt, seed and size: cosine
 * similarity and PSNR of the final latents and of the decoded images.
 *
 * <p>Latent PSNR takes the baseline latents' range (max − min) as the peak; image PSNR takes 255 on
 * the 8-bit pixels; image cosine is computed on pixels mapped to [-1, 1] (so that a grey offset
 * does not make every pair look alike). Equal outputs have an infinite PSNR.
 */
public record Fidelity(double latentCosine, double latentPsnrDb, double imageCosine, double imagePsnrDb) {

    public static Fidelity compare(float[] baseLatents, float[] latents, byte[][] baseRgb, byte[][] rgb) {
        if (baseLatents.length != latents.length || baseRgb.length != rgb.length) {
            throw new IllegalArgumentException("outputs differ in size from the baseline's");
        }
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        double dot = 0;
        double na = 0;
        double nb = 0;
        double se = 0;
        for (int i = 0; i < latents.length; i++) {
            double a = baseLatents[i];
            double b = latents[i];
            min = Math.min(min, a);
            max = Math.max(max, a);
            dot += a * b;
            na += a * a;
            nb += b * b;
            se += (a - b) * (a - b);
        }
        double latentCos = cosine(dot, na, nb);
        double latentPsnr = psnr(se / latents.length, max - min);

        double idot = 0;
        double ina = 0;
        double inb = 0;
        double ise = 0;
        long count = 0;
        for (int k = 0; k < rgb.length; k++) {
            if (baseRgb[k].length != rgb[k].length) {
                throw new IllegalArgumentException("images differ in size from the baseline's");
            }
            for (int i = 0; i < rgb[k].length; i++) {
                int pa = baseRgb[k][i] & 0xff;
                int pb = rgb[k][i] & 0xff;
                double a = pa / 127.5 - 1;
                double b = pb / 127.5 - 1;
                idot += a * b;
                ina += a * a;
                inb += b * b;
                ise += (double) (pa - pb) * (pa - pb);
                count++;
            }
        }
        return new Fidelity(latentCos, latentPsnr, cosine(idot, ina, inb), psnr(ise / Math.max(1, count), 255));
    }

    private static double cosine(double dot, double na, double nb) {
        if (na == 0 && nb == 0) {
            return 1;
        }
        if (na == 0 || nb == 0) {
            return 0;
        }
        return dot / Math.sqrt(na * nb);
    }

    private static double psnr(double mse, double peak) {
        if (mse == 0) {
            return Double.POSITIVE_INFINITY;
        }
        if (!(peak > 0) || Double.isNaN(mse)) {
            return Double.NaN;
        }
        return 10 * Math.log10(peak * peak / mse);
    }
}
