package dev.sdrt.cli;

import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code --input NAME=FILE.npy} options of run-onnx and profile. */
final class NpyInputs {
    private NpyInputs() {
    }

    /** The tensors of {@code --input NAME=FILE.npy} options, by input name; a name given twice is refused. */
    static Map<String, Tensor> read(List<String> specs) throws IOException {
        Map<String, Tensor> feeds = new LinkedHashMap<>();
        for (String spec : specs) {
            int eq = spec.indexOf('=');
            if (eq <= 0 || eq == spec.length() - 1) {
                throw new IllegalArgumentException("--input must look like NAME=FILE.npy, got '" + spec + "'");
            }
            String name = spec.substring(0, eq);
            if (feeds.containsKey(name)) {
                throw new IllegalArgumentException("input '" + name + "' is given twice");
            }
            feeds.put(name, Npy.read(Path.of(spec.substring(eq + 1))));
        }
        return feeds;
    }
}
