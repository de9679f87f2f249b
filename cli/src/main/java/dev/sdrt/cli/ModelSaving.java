package dev.sdrt.cli;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.SaveOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;

/** Writing an exported model to its file, as export and export-pipeline do. */
final class ModelSaving {
    private ModelSaving() {
    }

    /**
     * Saves {@code model} to {@code file}, showing the weights' progress on {@code err} when they are
     * large enough to take a while (writing them is most of an export's time).
     */
    static void saveShowingProgress(OnnxModel model, Path file, PrintWriter err) throws IOException {
        long totalBytes = model.graph().initializers().stream().mapToLong(v -> v.constant().byteSize()).sum();
        if (totalBytes < (64L << 20)) {
            model.save(file);
            return;
        }
        try (Progress progress = Progress.start(err, "writing " + file.getFileName(), totalBytes >> 20, "MiB", 500)) {
            long[] written = {0};
            model.save(file, SaveOptions.defaults().withProgress(bytes -> {
                written[0] += bytes;
                progress.stepTo(written[0] >> 20);
            }));
        }
    }
}
