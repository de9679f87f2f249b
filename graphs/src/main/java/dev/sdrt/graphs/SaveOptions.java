package dev.sdrt.graphs;

import java.util.function.LongConsumer;

/**
 * How {@link OnnxModel#save} lays out weights.
 *
 * @param externalData      where initializers go
 * @param autoExternalBytes with AUTO, total weight bytes above which a side file is used
 * @param inlineBelowBytes  tensors smaller than this stay inside the protobuf even with external data
 * @param progress          receives bytes written as weights are saved (may be null)
 * @param check             run the ONNX checker on the written model before it replaces the target, so
 *                          a model the checker rejects never replaces a good one. Off by default: the
 *                          checker also refuses models ONNX Runtime runs (an output without a declared
 *                          type, shape operands in external data). A command that checks what it
 *                          writes should turn it on instead of checking the file after the save.
 */
public record SaveOptions(ExternalData externalData, long autoExternalBytes, long inlineBelowBytes, LongConsumer progress,
        boolean check) {

    public enum ExternalData { AUTO, ALWAYS, NEVER }

    /** Options without the ONNX checker (the structure is always checked). */
    public SaveOptions(ExternalData externalData, long autoExternalBytes, long inlineBelowBytes, LongConsumer progress) {
        this(externalData, autoExternalBytes, inlineBelowBytes, progress, false);
    }

    public static SaveOptions defaults() {
        return new SaveOptions(ExternalData.AUTO, 256L << 20, 1024, null, false);
    }

    public SaveOptions withExternalData(ExternalData mode) {
        return new SaveOptions(mode, autoExternalBytes, inlineBelowBytes, progress, check);
    }

    public SaveOptions withProgress(LongConsumer listener) {
        return new SaveOptions(externalData, autoExternalBytes, inlineBelowBytes, listener, check);
    }

    /** With {@code true}, the ONNX checker must accept the written model before it replaces the target. */
    public SaveOptions withCheck(boolean runChecker) {
        return new SaveOptions(externalData, autoExternalBytes, inlineBelowBytes, progress, runChecker);
    }
}
