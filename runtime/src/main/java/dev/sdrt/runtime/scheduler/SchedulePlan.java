package dev.sdrt.runtime.scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.ToDoubleFunction;

/**
 * A scheduler's whole trajectory for a number of inference steps: one {@link PlanStep} per step, the
 * scale of the initial noise for text to image (x_0 = initNoiseSigma · z) and the {@link SampleSpace}
 * of its samples, from which image to image noises the encoded image ({@link #noiseSample}).
 * Immutable. Columns such as {@link #timesteps()} are what a device loop uploads once.
 */
public final class SchedulePlan {

    private final List<PlanStep> steps;
    private final double initNoiseSigma;
    private final SampleSpace space;

    public SchedulePlan(List<PlanStep> steps, double initNoiseSigma, SampleSpace space) {
        if (steps.isEmpty()) {
            throw new IllegalArgumentException("a plan needs at least one step");
        }
        this.steps = List.copyOf(steps);
        this.initNoiseSigma = initNoiseSigma;
        this.space = Objects.requireNonNull(space, "space");
    }

    /**
     * diffusers' image-to-image rule for how many of {@code steps} steps to skip:
     * steps − min(⌊steps·strength⌋, steps), so that strength 1 runs the whole schedule and smaller
     * strengths start later, at a lower noise level. The product is truncated in double, as
     * Python's {@code int()} does, so the same (steps, strength) skip the same steps.
     *
     * @throws IllegalArgumentException when steps &lt; 1, strength is outside (0, 1], or
     *     ⌊steps·strength⌋ = 0, which would run no step at all
     */
    public static int img2imgStart(int steps, double strength) {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be positive: " + steps);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1]: " + strength);
        }
        int run = Math.min((int) Math.floor(steps * strength), steps);
        if (run == 0) {
            throw new IllegalArgumentException("strength " + strength + " with " + steps
                    + " steps runs no denoising step; raise --strength or --steps");
        }
        return steps - run;
    }

    /**
     * The plan without its first {@code first} steps, for image to image (diffusers'
     * {@code timesteps[t_start:]}); the starting sample comes from {@link #noiseSample}, and
     * {@link #initNoiseSigma()} is kept as it was. Every step is unchanged except a new first step
     * that reads the previous step's denoised estimate (DPM-Solver++(2M)): there is none, so, as
     * diffusers resets the solver order, it becomes first order. With x0_prev replaced by the
     * step's own estimate p·x + q·out the second-order update is exactly the first-order one
     * (the weights (1 + 1/(2r)) and −1/(2r) sum to 1), so the previous-estimate term folds in:
     * <pre>  a' = a + c·p,   b' = b + c·q,   c' = 0</pre>
     *
     * @throws IllegalArgumentException unless 0 ≤ first &lt; size()
     */
    public SchedulePlan startingAt(int first) {
        if (first < 0 || first >= steps.size()) {
            throw new IllegalArgumentException("first step must be in 0.." + (steps.size() - 1) + ": " + first);
        }
        List<PlanStep> remaining = new ArrayList<>(steps.subList(first, steps.size()));
        PlanStep s = remaining.get(0);
        double c = s.previousDenoisedCoefficient();
        if (c != 0) {
            remaining.set(0, new PlanStep(s.timestep(), s.sigma(), s.sigmaNext(), s.sigmaUp(), s.sigmaDown(),
                    s.inputScale(), s.sampleCoefficient() + c * s.denoisedSampleCoefficient(),
                    s.outputCoefficient() + c * s.denoisedOutputCoefficient(), 0, s.noiseCoefficient(),
                    s.denoisedSampleCoefficient(), s.denoisedOutputCoefficient()));
        }
        return new SchedulePlan(remaining, initNoiseSigma, space);
    }

    public int size() {
        return steps.size();
    }

    public PlanStep step(int i) {
        return steps.get(i);
    }

    public List<PlanStep> steps() {
        return steps;
    }

    public double initNoiseSigma() {
        return initNoiseSigma;
    }

    public SampleSpace space() {
        return space;
    }

    /**
     * The image-to-image starting sample, in place: {@code x0InOut} holds the clean latent and
     * becomes x = s·x0 + n·z with (s, n) = {@code space().noising(step(0).sigma())}, z being
     * {@code noise} (standard normal). That is diffusers' {@code add_noise(x0, z, timesteps[t_start])}
     * (√ᾱ_t·x0 + √(1−ᾱ_t)·z for DDIM and DPM-Solver++, x0 + σ·z for the Euler samplers) and
     * {@code scale_noise} for flow matching. Arithmetic is in double.
     */
    public void noiseSample(float[] x0InOut, float[] noise) {
        NoisingForm form = startNoising(x0InOut.length, noise.length);
        for (int k = 0; k < x0InOut.length; k++) {
            x0InOut[k] = (float) form.apply(x0InOut[k], noise[k]);
        }
    }

    /** {@link #noiseSample(float[], float[])} for double buffers. */
    public void noiseSample(double[] x0InOut, double[] noise) {
        NoisingForm form = startNoising(x0InOut.length, noise.length);
        for (int k = 0; k < x0InOut.length; k++) {
            x0InOut[k] = form.apply(x0InOut[k], noise[k]);
        }
    }

    private NoisingForm startNoising(int sample, int noise) {
        if (noise != sample) {
            throw new IllegalArgumentException("noise has " + noise + " values, sample " + sample);
        }
        return space.noising(steps.get(0).sigma());
    }

    /** One value per step, e.g. {@code column(PlanStep::outputCoefficient)}. */
    public double[] column(ToDoubleFunction<PlanStep> field) {
        double[] values = new double[steps.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = field.applyAsDouble(steps.get(i));
        }
        return values;
    }

    public double[] timesteps() {
        return column(PlanStep::timestep);
    }

    /** The noise level entering each step, then the level after the last: size() + 1 values. */
    public double[] sigmas() {
        double[] sigmas = new double[steps.size() + 1];
        for (int i = 0; i < steps.size(); i++) {
            sigmas[i] = steps.get(i).sigma();
        }
        sigmas[steps.size()] = steps.get(steps.size() - 1).sigmaNext();
        return sigmas;
    }

    /** Columns of {@link #coefficientTable}, in order; the scheduler-step graph reads them by these indices. */
    public static final List<String> COEFFICIENT_COLUMNS = List.of(
            "guidance_scale", "sample", "output", "previous_denoised", "noise", "denoised_sample", "denoised_output",
            "next_input_scale", "next_input_shift");

    /**
     * Every step's coefficients as one row-major float32 table [steps, 9] (columns
     * {@link #COEFFICIENT_COLUMNS}), made on the host before the loop so a device can run each step
     * from its row without any host logic. {@code next_input_scale} and {@code next_input_shift}
     * make the following step's model input from the new sample (scale·x + shift: the following
     * step's input scale and 0); after the last step they are 1 and 0.
     */
    public float[] coefficientTable(double guidanceScale) {
        return coefficientTable(guidanceScale, 1.0, 0.0);
    }

    /**
     * {@link #coefficientTable(double)} with the last step's input transform set to
     * {@code finalScale}·x + {@code finalShift}, so the step that finishes the loop also hands the
     * VAE decoder its input (x / scaling_factor + shift_factor) with no extra graph.
     */
    public float[] coefficientTable(double guidanceScale, double finalScale, double finalShift) {
        int n = steps.size();
        int width = COEFFICIENT_COLUMNS.size();
        float[] table = new float[n * width];
        for (int i = 0; i < n; i++) {
            PlanStep s = steps.get(i);
            boolean last = i + 1 == n;
            double nextScale = last ? finalScale : steps.get(i + 1).inputScale();
            double nextShift = last ? finalShift : 0.0;
            double[] row = {guidanceScale, s.sampleCoefficient(), s.outputCoefficient(), s.previousDenoisedCoefficient(),
                s.noiseCoefficient(), s.denoisedSampleCoefficient(), s.denoisedOutputCoefficient(), nextScale, nextShift};
            for (int c = 0; c < width; c++) {
                table[i * width + c] = (float) row[c];
            }
        }
        return table;
    }

    /** Whether some step reads the previous step's denoised estimate (multistep solvers). */
    public boolean usesPreviousDenoised() {
        return steps.stream().anyMatch(step -> step.previousDenoisedCoefficient() != 0);
    }

    /** Whether some step adds fresh noise (ancestral samplers). */
    public boolean usesNoise() {
        return steps.stream().anyMatch(step -> step.noiseCoefficient() != 0);
    }

    /**
     * Step {@code i} on the host, in place: {@code sample} becomes x_next and, when given,
     * {@code previousDenoised} (read first as the previous step's estimate) becomes this step's
     * denoised estimate. {@code previousDenoised} is required when {@link #usesPreviousDenoised()},
     * {@code noise} when the step's noise coefficient is non-zero; either may be null otherwise.
     * Arithmetic is in double.
     */
    public void applyStep(int i, float[] sample, float[] modelOutput, float[] previousDenoised, float[] noise) {
        PlanStep step = steps.get(i);
        checkBuffers(step, sample.length, modelOutput.length,
                previousDenoised == null ? -1 : previousDenoised.length, noise == null ? -1 : noise.length);
        double a = step.sampleCoefficient();
        double b = step.outputCoefficient();
        double c = step.previousDenoisedCoefficient();
        double d = step.noiseCoefficient();
        double p = step.denoisedSampleCoefficient();
        double q = step.denoisedOutputCoefficient();
        for (int k = 0; k < sample.length; k++) {
            double x = sample[k];
            double out = modelOutput[k];
            double next = a * x + b * out;
            if (c != 0) {
                next += c * previousDenoised[k];
            }
            if (d != 0) {
                next += d * noise[k];
            }
            if (previousDenoised != null) {
                previousDenoised[k] = (float) (p * x + q * out);
            }
            sample[k] = (float) next;
        }
    }

    /** {@link #applyStep(int, float[], float[], float[], float[])} for double buffers. */
    public void applyStep(int i, double[] sample, double[] modelOutput, double[] previousDenoised, double[] noise) {
        PlanStep step = steps.get(i);
        checkBuffers(step, sample.length, modelOutput.length,
                previousDenoised == null ? -1 : previousDenoised.length, noise == null ? -1 : noise.length);
        double a = step.sampleCoefficient();
        double b = step.outputCoefficient();
        double c = step.previousDenoisedCoefficient();
        double d = step.noiseCoefficient();
        double p = step.denoisedSampleCoefficient();
        double q = step.denoisedOutputCoefficient();
        for (int k = 0; k < sample.length; k++) {
            double x = sample[k];
            double out = modelOutput[k];
            double next = a * x + b * out;
            if (c != 0) {
                next += c * previousDenoised[k];
            }
            if (d != 0) {
                next += d * noise[k];
            }
            if (previousDenoised != null) {
                previousDenoised[k] = p * x + q * out;
            }
            sample[k] = next;
        }
    }

    /** Lengths of the buffers; -1 for an absent one. */
    private void checkBuffers(PlanStep step, int sample, int modelOutput, int previousDenoised, int noise) {
        if (modelOutput != sample) {
            throw new IllegalArgumentException("model output has " + modelOutput + " values, sample " + sample);
        }
        if (previousDenoised < 0 ? usesPreviousDenoised() : previousDenoised != sample) {
            throw new IllegalArgumentException("this plan needs a previous-denoised buffer of "
                    + sample + " values");
        }
        if (noise < 0 ? step.noiseCoefficient() != 0 : noise != sample) {
            throw new IllegalArgumentException("this step needs a noise buffer of " + sample + " values");
        }
    }
}
