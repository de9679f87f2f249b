package dev.sdrt.calibration;

import dev.sdrt.graphs.ir.Graph;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The numbers a scales file carries, combined from the per-step statistics.
 *
 * @param amax per quantized activation (tensor name, graph order): its amax under {@code method}
 * @param smoothing per SmoothQuant activation: the factors {@code s} (one per input channel) that the
 *     Q/DQ pass folds ({@code x / s} before the MatMul, {@code diag(s)·W} into the weight); empty
 *     when SmoothQuant is off
 * @param smoothedAmax per SmoothQuant activation: the amax of {@code x / s} under {@code method},
 *     combined from the per-step values {@code max_j(max|x_j| / s_j)}
 */
public record CalibrationResult(CalibrationMethod method, Double alpha, Map<String, Float> amax,
        Map<String, float[]> smoothing, Map<String, Float> smoothedAmax) {

    public CalibrationResult {
        amax = Collections.unmodifiableMap(new LinkedHashMap<>(amax));
        smoothing = Collections.unmodifiableMap(new LinkedHashMap<>(smoothing));
        smoothedAmax = Collections.unmodifiableMap(new LinkedHashMap<>(smoothedAmax));
    }

    /**
     * Combines {@code stats} with {@code method}; with {@code alpha} non-null, also computes
     * SmoothQuant factors for every activation with per-channel statistics (its weights are read
     * from {@code graph}, the original model's graph). The per-channel maxima that make the factors
     * are the maxima over every sample and step, as in SmoothQuant.
     *
     * @throws IllegalStateException when some (sample, step) was never recorded
     */
    public static CalibrationResult compute(ActivationStatistics stats, Graph graph, CalibrationMethod method, Double alpha) {
        if (!stats.isComplete()) {
            throw new IllegalStateException("calibration statistics are incomplete: some (sample, step) pairs were never recorded");
        }
        Map<String, Float> amax = new LinkedHashMap<>();
        for (String tensor : stats.tensors()) {
            amax.put(tensor, positive(method, stats.amax(tensor)));
        }
        Map<String, float[]> smoothing = new LinkedHashMap<>();
        Map<String, Float> smoothedAmax = new LinkedHashMap<>();
        if (alpha != null) {
            for (String tensor : stats.channelTensors()) {
                float[] s = SmoothQuant.factors(graph, tensor, stats.overallChannelMax(tensor), alpha);
                float[][][] perStep = stats.channelMax(tensor);
                float[][] smoothed = new float[stats.samples()][stats.steps()];
                for (int i = 0; i < stats.samples(); i++) {
                    for (int t = 0; t < stats.steps(); t++) {
                        smoothed[i][t] = SmoothQuant.smoothedMax(perStep[i][t], s);
                    }
                }
                smoothing.put(tensor, s);
                smoothedAmax.put(tensor, positive(method, smoothed));
            }
        }
        return new CalibrationResult(method, alpha, amax, smoothing, smoothedAmax);
    }

    /** Written for a tensor that was zero at every step: any scale maps zeros to zeros. */
    static final float ZERO_TENSOR_AMAX = 1e-6f;

    /**
     * The method's amax, kept positive as scales must be: 0 (the tensor was zero at the steps the
     * method picked) falls back to the overall maximum, and a tensor zero everywhere gets
     * {@link #ZERO_TENSOR_AMAX}.
     */
    private static float positive(CalibrationMethod method, float[][] values) {
        float a = method.combine(values);
        if (a > 0) {
            return a;
        }
        float max = new CalibrationMethod.Max().combine(values);
        return max > 0 ? max : ZERO_TENSOR_AMAX;
    }
}
