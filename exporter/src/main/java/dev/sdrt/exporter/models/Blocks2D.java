package dev.sdrt.exporter.models;

import dev.sdrt.exporter.builder.GraphBuilder;
import dev.sdrt.exporter.builder.GraphBuilder.Scope;
import dev.sdrt.graphs.ir.Value;

/**
 * The convolutional blocks that diffusers' UNet2DConditionModel and AutoencoderKL share ({@code ResnetBlock2D},
 * {@code Downsample2D}, {@code Upsample2D}) and the NCHW/token layout changes around their attention, built with the
 * group count, epsilon and activation of one model.
 */
final class Blocks2D {
    /**
     * The most resolution levels (entries of block_out_channels) a UNet or VAE may have: each halves the image,
     * so 16 already means a downsampling of 32768 (SD 1.x, 2.x and their VAE have 4, SDXL's UNet 3).
     */
    static final int MAX_BLOCKS = 16;

    private final GraphBuilder b;
    private final long groups;
    private final double eps;
    private final String activation;

    Blocks2D(GraphBuilder b, long groups, double eps, String activation) {
        this.b = b;
        this.groups = groups;
        this.eps = eps;
        this.activation = activation;
    }

    Value act(Value x) {
        return b.activation(activation, x);
    }

    Value groupNorm(String module, Value x, long channels, double epsilon) {
        return b.groupNorm(module, x, channels, groups, epsilon, true);
    }

    /**
     * {@code ResnetBlock2D} with time_embedding_norm "default": norm1, act, conv1, plus the projected time
     * embedding, norm2, act, conv2, added to the input (through a 1x1 {@code conv_shortcut} when the channel count
     * changes), divided by {@code outputScale}.
     *
     * @param tembActivated the time embedding after the block's activation, [B, tembDim]; null for the VAE, whose
     *                      resnets have no {@code time_emb_proj}. diffusers applies the activation inside every
     *                      resnet; it is the same tensor each time, so callers compute it once.
     */
    Value resnet(String module, Value x, long in, long out, Value tembActivated, long tembDim, double outputScale) {
        try (Scope s = b.scope(module)) {
            Value h = act(groupNorm("norm1", x, in, eps));
            h = b.conv2d("conv1", h, in, out, 3, 1, 1, true);
            if (tembActivated != null) {
                Value t = b.linear("time_emb_proj", tembActivated, tembDim, out, true);
                h = b.add(h, b.unsqueeze(t, 2, 3));
            }
            h = act(groupNorm("norm2", h, out, eps));
            h = b.conv2d("conv2", h, out, out, 3, 1, 1, true);
            Value shortcut = in == out ? x : b.conv2d("conv_shortcut", x, in, out, 1, 1, 0, true);
            Value y = b.add(shortcut, h);
            return outputScale == 1 ? y : b.div(y, b.scalar(outputScale));
        }
    }

    /**
     * {@code Downsample2D} with a conv: 3x3, stride 2. With {@code padding} 0 diffusers pads right and bottom by one
     * first ({@code F.pad(x, (0, 1, 0, 1))}, the VAE encoder's form), which the conv's own padding expresses exactly.
     */
    Value downsample(String module, Value x, long channels, long padding) {
        try (Scope s = b.scope(module)) {
            long[] pads = padding == 0 ? new long[] {0, 0, 1, 1} : new long[] {padding, padding, padding, padding};
            return b.conv2d("conv", x, channels, channels, 3, 2, pads, true);
        }
    }

    /**
     * {@code Upsample2D} with a conv: nearest x2, then a 3x3 conv. diffusers may instead interpolate to the size of
     * the skip connection when the input size is not a multiple of the total downsampling; the exporters require
     * multiples, where both are the same.
     */
    Value upsample(String module, Value x, long channels) {
        try (Scope s = b.scope(module)) {
            return b.conv2d("conv", b.upsampleNearest(x, 2), channels, channels, 3, 1, 1, true);
        }
    }

    /** [B, C, H, W] -> [B, H*W, C]. */
    Value toTokens(Value x, long channels) {
        return b.transpose(b.reshape(x, 0, channels, -1), 0, 2, 1);
    }

    /** [B, H*W, C] -> [B, C, H, W], taking H and W from {@code like}. */
    Value toImage(Value tokens, Value like) {
        return b.reshape(b.transpose(tokens, 0, 2, 1), b.shapeOf(like));
    }
}
