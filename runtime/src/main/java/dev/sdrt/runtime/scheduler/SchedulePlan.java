package dev.sdrt.runtime.scheduler;

import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * A scheduler's whole trajectory for a number of inference steps: one {@link PlanStep} per step and
 * the scale of the initial noise (x_0 = initNoiseSigma · z). Immutable. Columns such as
 * {@link #timesteps()} are what a device loop uploads once.
 */
public final class SchedulePlan {

    private final List<PlanStep> steps;
    private final double initNoiseSigma;

    public SchedulePlan(List<PlanStep> steps, double initNoiseSigma) {
        if (steps.isEmpty()) {
            throw new IllegalArgumentException("a plan needs at least one step");
        }
        this.steps = List.copyOf(steps);
        this.initNoiseSigma = initNoiseSigma;
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
    public static final java.util.List<String> COEFFICIENT_COLUMNS = java.util.List.of(
            "guidance_scale", "sample", "output", "previous_denoised", "noise", "denoised_sample", "denoised_output",
            "next_input_scale");

    /**
     * Every step's coefficients as one row-major float32 table [steps, 8] (columns
     * {@link #COEFFICIENT_COLUMNS}), made on the host before the loop so a device can run each step
     * from its row without any host logic. {@code next_input_scale} is the following step's model
     * input scale (1 after the last step).
     */
    public float[] coefficientTable(double guidanceScale) {
        int n = steps.size();
        int width = COEFFICIENT_COLUMNS.size();
        float[] table = new float[n * width];
        for (int i = 0; i < n; i++) {
            PlanStep s = steps.get(i);
            double nextScale = i + 1 < n ? steps.get(i + 1).inputScale() : 1.0;
            double[] row = {guidanceScale, s.sampleCoefficient(), s.outputCoefficient(), s.previousDenoisedCoefficient(),
                s.noiseCoefficient(), s.denoisedSampleCoefficient(), s.denoisedOutputCoefficient(), nextScale};
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
