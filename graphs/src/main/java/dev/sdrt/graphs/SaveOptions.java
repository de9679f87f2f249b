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
 *                          a model the checker rejects never replaces a good one
 */
public record SaveOptions(ExternalData externalData, long autoExternalBytes, long inlineBelowBytes, LongConsumer progress,
        boolean check) {

    public enum ExternalData { AUTO, ALWAYS, NEVER }

    /** Options that check the model before it replaces the target. */
    public SaveOptions(ExternalData externalData, long autoExternalBytes, long inlineBelowBytes, LongConsumer progress) {
        this(externalData, autoExternalBytes, inlineBelowBytes, progress, true);
    }

    public static SaveOptions defaults() {
        return new SaveOptions(ExternalData.AUTO, 256L << 20, 1024, null, true);
    }

    public SaveOptions withExternalData(ExternalData mode) {
        return new SaveOptions(mode, autoExternalBytes, inlineBelowBytes, progress, check);
    }

    public SaveOptions withProgress(LongConsumer listener) {
        return new SaveOptions(externalData, autoExternalBytes, inlineBelowBytes, listener, check);
    }

    /** With {@code false}, a model is saved without the ONNX checker (the structure is still checked). */
    public SaveOptions withCheck(boolean runChecker) {
        return new SaveOptions(externalData, autoExternalBytes, inlineBelowBytes, progress, runChecker);
    }
}
