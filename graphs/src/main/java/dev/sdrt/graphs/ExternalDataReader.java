package dev.sdrt.graphs;

import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.TensorData;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Resolves TensorProto external data references against the model's folder, refusing anything that
 * would read outside it or past the end of a file.
 */
final class ExternalDataReader {
    private final Path folder;
    private final Path realFolder;
    private final Map<Path, Long> fileSizes = new LinkedHashMap<>();

    ExternalDataReader(Path folder) throws IOException {
        this.folder = folder.toAbsolutePath().normalize();
        this.realFolder = this.folder.toRealPath();
    }

    /** Distinct files read so far, in first-use order. */
    List<Path> filesRead() {
        return List.copyOf(fileSizes.keySet());
    }

    TensorData read(TensorProto t) throws IOException {
        String location = null;
        long offset = 0;
        long length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "location" -> location = e.getValue();
                case "offset" -> offset = parseLong(t, "offset", e.getValue());
                case "length" -> length = parseLong(t, "length", e.getValue());
                default -> { } // checksum and future keys do not affect reading
            }
        }
        if (location == null || location.isEmpty()) {
            throw new OnnxFormatException("initializer '" + t.getName() + "' uses external data but names no location");
        }
        Path file = resolveInside(t.getName(), location);
        DataType type = DataType.fromOnnx(t.getDataType());
        long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        long expected = Math.multiplyExact(Arrays.stream(dims).reduce(1, Math::multiplyExact), (long) type.byteSize());
        if (length >= 0 && length != expected) {
            throw new OnnxFormatException("initializer '" + t.getName() + "': external data length " + length
                    + " does not match its shape " + type + Arrays.toString(dims) + " (" + expected + " bytes)");
        }
        long fileSize = fileSizes.computeIfAbsent(file, f -> {
            try {
                return Files.size(f);
            } catch (IOException e) {
                return -1L;
            }
        });
        if (offset < 0 || offset + expected > fileSize) {
            throw new OnnxFormatException("initializer '" + t.getName() + "': external data range [" + offset + ", "
                    + (offset + expected) + ") runs past the end of " + file.getFileName() + " (" + fileSize + " bytes)");
        }
        if (expected > Integer.MAX_VALUE) {
            throw new OnnxFormatException("initializer '" + t.getName() + "' is " + expected + " bytes; tensors over 2 GiB are not supported");
        }
        // Mapped now, not lazily: a later save may replace this very file, and a live mapping keeps the old contents.
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return TensorData.of(type, dims, ch.map(FileChannel.MapMode.READ_ONLY, offset, expected));
        }
    }

    private Path resolveInside(String tensor, String location) throws IOException {
        Path relative;
        try {
            relative = Path.of(location);
        } catch (java.nio.file.InvalidPathException e) {
            throw new OnnxFormatException("initializer '" + tensor + "': external data location '" + location + "' is not a valid path");
        }
        if (relative.isAbsolute()) {
            throw new OnnxFormatException("initializer '" + tensor + "': external data location '" + location
                    + "' is an absolute path; it must be relative to the model folder " + folder);
        }
        Path file = folder.resolve(relative).normalize();
        if (!file.startsWith(folder)) {
            throw new OnnxFormatException("initializer '" + tensor + "': external data location '" + location
                    + "' resolves outside the model folder " + folder);
        }
        if (!Files.exists(file)) {
            throw new OnnxFormatException("initializer '" + tensor + "': external data file " + file + " is missing");
        }
        if (!file.toRealPath().startsWith(realFolder)) {
            throw new OnnxFormatException("initializer '" + tensor + "': external data location '" + location
                    + "' links outside the model folder " + folder);
        }
        if (!Files.isRegularFile(file)) {
            throw new OnnxFormatException("initializer '" + tensor + "': external data location " + file + " is not a file");
        }
        return file;
    }

    private static long parseLong(TensorProto t, String key, String value) throws OnnxFormatException {
        try {
            return Long.parseLong(value.trim());
        } catch (NumberFormatException e) {
            throw new OnnxFormatException("initializer '" + t.getName() + "': external data " + key + " '" + value + "' is not a number");
        }
    }
}
