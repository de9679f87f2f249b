package dev.sdrt.enginebuilder;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Everything a TensorRT engine build depends on, as the user asked for it.
 *
 * <p>{@code height} and {@code width} are in the units of the model's spatial inputs: latent pixels
 * for a UNet, VAE decoder or SD3 transformer (image size / 8), so {@code sdrt build --height 512}
 * becomes 64 here. {@code tokens} is the text length of {@code encoder_hidden_states} and {@code
 * input_ids} (77 for CLIP). Dimensions fixed in the ONNX graph are taken from the graph; these ranges
 * only fill the dynamic ones (see {@link ProfileDeriver}).
 *
 * @param onnx              the ONNX file (its external data files sit beside it)
 * @param batch             batch sizes (the model's own batch: 2 per image with classifier-free guidance)
 * @param height            spatial height of the spatial inputs
 * @param width             spatial width of the spatial inputs
 * @param tokens            text length
 * @param staticShapes      build for the opt values only (min = opt = max): fastest, least flexible
 * @param optLevel          TensorRT builder optimization level, 0..5 (TensorRT's default is 3)
 * @param workspaceBytes    limit of TensorRT's workspace memory pool; 0 leaves TensorRT's default
 * @param timingCache       file of tactic timings reused across builds (null: none)
 * @param refit             build a refittable engine (weights can be swapped without rebuilding)
 * @param tf32              allow TF32 math for float32 layers; off for bit-faithful float32 comparisons
 * @param passSpec          the graph passes that produced the ONNX, e.g. "fuse-qkv,fp16" ("" for none)
 * @param precisionHint     what to record as precision when the ONNX graph does not tell (null: "unknown")
 * @param dimOverrides      ranges for dynamic dimensions the rules cannot resolve, keyed by symbolic
 *                          dimension name ("sequence") or by "input:axis" ("foo:1")
 */
public record EngineBuildRequest(
        Path onnx,
        DimRange batch,
        DimRange height,
        DimRange width,
        DimRange tokens,
        boolean staticShapes,
        int optLevel,
        long workspaceBytes,
        Path timingCache,
        boolean refit,
        boolean tf32,
        String passSpec,
        String precisionHint,
        Map<String, DimRange> dimOverrides) {

    public EngineBuildRequest {
        Objects.requireNonNull(onnx, "onnx");
        Objects.requireNonNull(batch, "batch");
        Objects.requireNonNull(height, "height");
        Objects.requireNonNull(width, "width");
        Objects.requireNonNull(tokens, "tokens");
        if (optLevel < 0 || optLevel > 5) {
            throw new IllegalArgumentException("the TensorRT optimization level is 0..5, got " + optLevel);
        }
        if (workspaceBytes < 0) {
            throw new IllegalArgumentException("negative workspace limit " + workspaceBytes);
        }
        passSpec = passSpec == null ? "" : passSpec.trim();
        dimOverrides = Map.copyOf(dimOverrides == null ? Map.of() : dimOverrides);
    }

    /** A builder with sdrt's defaults: batch 1..4 (opt 1), 64×64 latents, 77 tokens, dynamic, level 3, TF32 on. */
    public static Builder builder(Path onnx) {
        return new Builder(onnx);
    }

    /** A builder starting from this request's values. */
    public Builder toBuilder() {
        Builder builder = new Builder(onnx);
        builder.batch = batch;
        builder.height = height;
        builder.width = width;
        builder.tokens = tokens;
        builder.staticShapes = staticShapes;
        builder.optLevel = optLevel;
        builder.workspaceBytes = workspaceBytes;
        builder.timingCache = timingCache;
        builder.refit = refit;
        builder.tf32 = tf32;
        builder.passSpec = passSpec;
        builder.precisionHint = precisionHint;
        builder.dimOverrides.putAll(dimOverrides);
        return builder;
    }

    /** Fluent construction; every setting has a default. */
    public static final class Builder {
        private Path onnx;
        private DimRange batch = new DimRange(1, 1, 4);
        private DimRange height = DimRange.fixed(64);
        private DimRange width = DimRange.fixed(64);
        private DimRange tokens = DimRange.fixed(77);
        private boolean staticShapes;
        private int optLevel = 3;
        private long workspaceBytes;
        private Path timingCache;
        private boolean refit;
        private boolean tf32 = true;
        private String passSpec = "";
        private String precisionHint;
        private final Map<String, DimRange> dimOverrides = new LinkedHashMap<>();

        private Builder(Path onnx) {
            this.onnx = onnx;
        }

        public Builder onnx(Path file) {
            this.onnx = file;
            return this;
        }

        public Builder batch(DimRange range) {
            this.batch = range;
            return this;
        }

        public Builder batch(long size) {
            return batch(DimRange.fixed(size));
        }

        public Builder height(DimRange range) {
            this.height = range;
            return this;
        }

        public Builder width(DimRange range) {
            this.width = range;
            return this;
        }

        /** Same height and width range. */
        public Builder size(DimRange range) {
            return height(range).width(range);
        }

        public Builder tokens(DimRange range) {
            this.tokens = range;
            return this;
        }

        public Builder staticShapes(boolean value) {
            this.staticShapes = value;
            return this;
        }

        public Builder optLevel(int level) {
            this.optLevel = level;
            return this;
        }

        public Builder workspaceBytes(long bytes) {
            this.workspaceBytes = bytes;
            return this;
        }

        public Builder timingCache(Path file) {
            this.timingCache = file;
            return this;
        }

        public Builder refit(boolean value) {
            this.refit = value;
            return this;
        }

        public Builder tf32(boolean value) {
            this.tf32 = value;
            return this;
        }

        public Builder passSpec(String spec) {
            this.passSpec = spec;
            return this;
        }

        public Builder precisionHint(String precision) {
            this.precisionHint = precision;
            return this;
        }

        /** A range for a dynamic dimension, by symbolic name ("sequence") or "input:axis" ("foo:1"). */
        public Builder dim(String key, DimRange range) {
            this.dimOverrides.put(key, range);
            return this;
        }

        public EngineBuildRequest build() {
            return new EngineBuildRequest(onnx, batch, height, width, tokens, staticShapes, optLevel, workspaceBytes,
                    timingCache, refit, tf32, passSpec, precisionHint, dimOverrides);
        }
    }
}
