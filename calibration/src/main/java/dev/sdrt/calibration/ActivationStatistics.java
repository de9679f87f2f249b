package dev.sdrt.calibration;

import dev.sdrt.calibration.TappedModel.Observation;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Tap observations kept per sample (usually a prompt) and per denoising step, so that a
 * {@link CalibrationMethod} can combine them afterwards. Per-channel maxima are kept per step too:
 * the amax of a smoothed activation {@code x / s} depends on the smoothing factors {@code s}, which
 * are only known once every step has been seen. Memory: 4 bytes × samples × steps × (tensors +
 * channels of the SmoothQuant tensors); for SD 1.5 with 32 prompts × 30 steps about 0.6 GB.
 */
public final class ActivationStatistics {
    private final int samples;
    private final int steps;
    private final Map<String, float[][]> amax = new LinkedHashMap<>();
    private final Map<String, float[][][]> channelMax = new LinkedHashMap<>();
    private final boolean[][] seen;

    public ActivationStatistics(int samples, int steps) {
        if (samples < 1 || steps < 1) {
            throw new IllegalArgumentException("need at least one sample and one step, got " + samples + " × " + steps);
        }
        this.samples = samples;
        this.steps = steps;
        this.seen = new boolean[samples][steps];
    }

    public int samples() {
        return samples;
    }

    public int steps() {
        return steps;
    }

    /** Records what the taps saw for {@code sample} at {@code step}; each pair is recorded once. */
    public void add(int sample, int step, Observation o) {
        if (sample < 0 || sample >= samples || step < 0 || step >= steps) {
            throw new IndexOutOfBoundsException("sample " + sample + ", step " + step + " outside " + samples + " × " + steps);
        }
        if (seen[sample][step]) {
            throw new IllegalStateException("sample " + sample + ", step " + step + " was already recorded");
        }
        seen[sample][step] = true;
        o.amax().forEach((tensor, v) -> amax.computeIfAbsent(tensor, k -> new float[samples][steps])[sample][step] = v);
        o.channelMax().forEach((tensor, v) ->
                channelMax.computeIfAbsent(tensor, k -> new float[samples][steps][])[sample][step] = v.clone());
    }

    /** Whether every (sample, step) pair has been recorded. */
    public boolean isComplete() {
        for (boolean[] row : seen) {
            for (boolean b : row) {
                if (!b) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Tensors with per-tensor observations, in the order they were first seen. */
    public Set<String> tensors() {
        return amax.keySet();
    }

    /** Tensors with per-channel observations. */
    public Set<String> channelTensors() {
        return channelMax.keySet();
    }

    /** max|x| of {@code tensor} as {@code [sample][step]} (a live view; do not modify). */
    public float[][] amax(String tensor) {
        float[][] v = amax.get(tensor);
        if (v == null) {
            throw new IllegalArgumentException("no observations of tensor '" + tensor + "'");
        }
        return v;
    }

    /** max|x| per channel of {@code tensor} as {@code [sample][step][channel]} (a live view). */
    public float[][][] channelMax(String tensor) {
        float[][][] v = channelMax.get(tensor);
        if (v == null) {
            throw new IllegalArgumentException("no per-channel observations of tensor '" + tensor + "'");
        }
        return v;
    }

    /** max|x_j| over every sample and step, per channel j. */
    public float[] overallChannelMax(String tensor) {
        float[][][] v = channelMax(tensor);
        float[] out = v[0][0].clone();
        for (float[][] sample : v) {
            for (float[] step : sample) {
                if (step.length != out.length) {
                    throw new IllegalStateException("tensor '" + tensor + "' changed its channel count between steps: "
                            + out.length + " and " + step.length);
                }
                for (int j = 0; j < out.length; j++) {
                    out[j] = Math.max(out[j], step[j]);
                }
            }
        }
        return out;
    }
}
