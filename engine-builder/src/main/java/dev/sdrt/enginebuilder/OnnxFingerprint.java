package dev.sdrt.enginebuilder;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The identity of an ONNX model's contents: the hash of the .onnx file and of every external data
 * file it reads its weights from. Two builds from the same fingerprint saw the same graph and weights.
 */
public record OnnxFingerprint(FileHash model, List<FileHash> externalData) {

    public OnnxFingerprint {
        externalData = List.copyOf(externalData);
    }

    /** Hashes {@code onnx} and the external data files listed in {@code summary}. */
    public static OnnxFingerprint of(Path onnx, List<Path> externalDataFiles) throws IOException {
        Path folder = onnx.toAbsolutePath().getParent();
        List<FileHash> external = new ArrayList<>();
        for (Path file : externalDataFiles) {
            Path absolute = file.toAbsolutePath();
            String name = folder != null && absolute.startsWith(folder)
                    ? folder.relativize(absolute).toString() : absolute.toString();
            external.add(FileHash.of(absolute, name));
        }
        external.sort(Comparator.comparing(FileHash::file));
        return new OnnxFingerprint(FileHash.of(onnx, onnx.getFileName().toString()), external);
    }
}
