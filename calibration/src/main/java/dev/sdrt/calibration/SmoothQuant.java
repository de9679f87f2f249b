package dev.sdrt.calibration;

import dev.sdrt.graphs.ir.Constants;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.TensorData;
import java.util.ArrayList;
import java.util.List;

/**
 * SmoothQuant (Xiao et al. 2023) for the Linear layers of a graph: activation outliers sit in a few
 * input channels, so they are moved into the weights, which quantize per output channel and absorb
 * them easily. For an activation {@code X} read by MatMuls (and Gemms) with constant weights
 * {@code W [K, N]} and each input channel {@code j}:
 *
 * <pre>
 *   s_j = max|X_j|^α / max|W_j|^(1−α)        (max|W_j| over input channel j of every weight reading X)
 *   X·W = (X / s) · (diag(s) · W)
 * </pre>
 *
 * Following the reference implementation, {@code max|W_j|} and {@code s_j} are clamped below at
 * 1e-5; a channel that never fired ({@code max|X_j| = 0}) keeps {@code s_j = 1}. α = 0.5 balances
 * activation and weight ranges, a larger α moves more of the range into the weights (diffusion
 * UNets use about 0.8).
 */
public final class SmoothQuant {
    static final float MIN = 1e-5f;

    private SmoothQuant() {
    }

    /** The smoothing factors for activation {@code x} of {@code graph}, from its per-channel maxima. */
    public static float[] factors(Graph graph, String x, float[] activationChannelMax, double alpha) {
        if (!(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("SmoothQuant alpha must be in [0, 1], got " + alpha);
        }
        float[] weightMax = weightRowMax(graph, x);
        if (weightMax.length != activationChannelMax.length) {
            throw new IllegalStateException("activation " + x + " has " + activationChannelMax.length
                    + " channels but its weights have " + weightMax.length + " rows");
        }
        float[] s = new float[weightMax.length];
        for (int j = 0; j < s.length; j++) {
            if (activationChannelMax[j] == 0) {
                s[j] = 1;
                continue;
            }
            double w = Math.max(weightMax[j], MIN);
            s[j] = (float) Math.max(Math.pow(activationChannelMax[j], alpha) / Math.pow(w, 1 - alpha), MIN);
        }
        return s;
    }

    /**
     * max|W_j| per input channel j over every weight that the Q/DQ pass smooths together with
     * {@code x}: the MatMuls (row j of W [K, N]) and Gemms (column j of B when transB) that read it
     * with a constant weight. Several Linears often share an input: Q, K and V, or the text context
     * of every cross-attention.
     */
    public static float[] weightRowMax(Graph graph, String x) {
        float[] max = null;
        for (Node n : QuantTargets.readers(graph.requireValue(x))) {
            TensorData w = Constants.data(n.input(1));
            int axis = QuantTargets.weightInputAxis(n);
            long[] dims = w.dims();
            int rows = (int) dims[axis];
            int cols = (int) dims[1 - axis];
            float[] values = w.toFloats();
            if (max == null) {
                max = new float[rows];
            } else if (max.length != rows) {
                throw new IllegalStateException("weights reading " + x + " disagree on their input channels: " + max.length
                        + " and " + rows);
            }
            for (int r = 0; r < dims[0]; r++) {
                for (int c = 0; c < dims[1]; c++) {
                    int j = axis == 0 ? r : c;
                    max[j] = Math.max(max[j], Math.abs(values[(int) (r * dims[1] + c)]));
                }
            }
        }
        if (max == null) {
            throw new IllegalArgumentException(x + " is not read by a MatMul or Gemm with a constant weight");
        }
        return max;
    }

    /** Weights (input 1 of each reader) that SmoothQuant scales for activation {@code x}. */
    public static List<String> weightsOf(Graph graph, String x) {
        List<String> out = new ArrayList<>();
        for (Node n : QuantTargets.readers(graph.requireValue(x))) {
            out.add(n.input(1).name());
        }
        return out;
    }

    /** max_j (channelMax_j / s_j): the absolute maximum of {@code x / s} given the per-channel maxima of x. */
    public static float smoothedMax(float[] channelMax, float[] s) {
        float m = 0;
        for (int j = 0; j < s.length; j++) {
            m = Math.max(m, channelMax[j] / s[j]);
        }
        return m;
    }
}
