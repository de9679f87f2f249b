package dev.sdrt.graphs;

import java.util.function.LongConsumer;

/**
 * How {@link OnnxModel#save} lays out weights.
 *
 * @param externalData      where initializers go
 * @param autoExternalBytes with AUTO, total weight bytes above which a side file is used
 * @param inlineBelowBytes  tensors smaller than this stay inside the protobuf even with external data
 * @param progress          receives bytes written as weights are saved (may be null)
 */
public record SaveOptions(ExternalData externalData, long autoExternalBytes, long inlineBelowBytes, LongConsumer progress) {

    public enum ExternalData { AUTO, ALWAYS, NEVER }

    public static SaveOptions defaults() {
        return new SaveOptions(ExternalData.AUTO, 256L << 20, 1024, null);
    }

    public SaveOptions withExternalData(ExternalData mode) {
        return new SaveOptions(mode, autoExternalBytes, inlineBelowBytes, progress);
    }

    public SaveOptions withProgress(LongConsumer listener) {
        return new SaveOptions(externalData, autoExternalBytes, inlineBelowBytes, listener);
    }
}
