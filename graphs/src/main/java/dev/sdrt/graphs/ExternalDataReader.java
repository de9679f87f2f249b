package dev.sdrt.graphs;

import static dev.sdrt.graphs.io.Messages.quote;

import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.TensorProtos;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Resolves TensorProto external data references against the model's folder, refusing anything that
 * would read outside it or past the end of a file. Any location inside the folder is accepted,
 * whatever its name: models saved by sdrt name their data file after its contents.
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
        String tensor = quote(t.getName());
        String location = location(t);
        long offset = 0;
        long length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "offset" -> offset = parseLong(tensor, "offset", e.getValue());
                case "length" -> length = parseLong(tensor, "length", e.getValue());
                default -> { } // location is read above; checksum and future keys do not affect reading
            }
        }
        Path file = resolve(t);
        DataType type;
        long expected;
        long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        try {
            type = TensorProtos.dataType(t, "initializer " + tensor);
            expected = TensorProtos.byteSize("initializer " + tensor, type, dims);
        } catch (IllegalArgumentException e) {
            throw new OnnxFormatException(e.getMessage(), e);
        }
        if (type == DataType.STRING) {
            throw new OnnxFormatException("initializer " + tensor + " holds strings, which sdrt does not support");
        }
        if (offset < 0 || length < -1) {
            throw new OnnxFormatException("initializer " + tensor + ": external data " + (offset < 0 ? "offset " + offset
                    : "length " + length) + " is negative");
        }
        if (length >= 0 && length != expected) {
            throw new OnnxFormatException("initializer " + tensor + ": external data length " + length
                    + " does not match its shape " + type + TensorProtos.shortDims(dims) + " (" + expected + " bytes)");
        }
        long fileSize = fileSizes.get(file);
        // written as a subtraction: offset + expected overflows for offsets near Long.MAX_VALUE
        if (offset > fileSize || expected > fileSize - offset) {
            throw new OnnxFormatException("initializer " + tensor + ": external data range at offset " + offset + ", "
                    + expected + " bytes long, runs past the end of " + quote(location) + " (" + fileSize + " bytes)");
        }
        if (expected > Integer.MAX_VALUE) {
            throw new OnnxFormatException("initializer " + tensor + " is " + expected + " bytes; tensors over 2 GiB are not supported");
        }
        // Mapped now, not lazily: a later save may replace this very file, and a live mapping keeps the old contents.
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return TensorData.of(type, dims, ch.map(FileChannel.MapMode.READ_ONLY, offset, expected));
        }
    }

    /**
     * The file {@code t}'s external data lives in, checked to be a regular file inside the model
     * folder (and remembered, with its size, among the files read).
     */
    Path resolve(TensorProto t) throws IOException {
        String tensor = quote(t.getName());
        String location = location(t);
        Path relative;
        try {
            relative = Path.of(location);
        } catch (InvalidPathException e) {
            throw new OnnxFormatException("initializer " + tensor + ": external data location " + quote(location)
                    + " is not a valid path");
        }
        if (relative.isAbsolute()) {
            throw new OnnxFormatException("initializer " + tensor + ": external data location " + quote(location)
                    + " is an absolute path; it must be relative to the model folder " + folder);
        }
        Path file = folder.resolve(relative).normalize();
        if (!file.startsWith(folder) || file.equals(folder)) {
            throw new OnnxFormatException("initializer " + tensor + ": external data location " + quote(location)
                    + " resolves outside the model folder " + folder);
        }
        if (fileSizes.containsKey(file)) {
            return file;
        }
        if (!Files.exists(file)) {
            throw new OnnxFormatException("initializer " + tensor + ": external data file " + quote(location)
                    + " is missing from " + folder);
        }
        if (!file.toRealPath().startsWith(realFolder)) {
            throw new OnnxFormatException("initializer " + tensor + ": external data location " + quote(location)
                    + " links outside the model folder " + folder);
        }
        if (!Files.isRegularFile(file)) {
            throw new OnnxFormatException("initializer " + tensor + ": external data location " + quote(location) + " is not a file");
        }
        fileSizes.put(file, Files.size(file));
        return file;
    }

    private static String location(TensorProto t) throws OnnxFormatException {
        for (StringStringEntryProto e : t.getExternalDataList()) {
            if (e.getKey().equals("location") && !e.getValue().isEmpty()) {
                return e.getValue();
            }
        }
        throw new OnnxFormatException("initializer " + quote(t.getName()) + " uses external data but names no location");
    }

    private static long parseLong(String tensor, String key, String value) throws OnnxFormatException {
        try {
            return Long.parseLong(value.trim());
        } catch (NumberFormatException e) {
            throw new OnnxFormatException("initializer " + tensor + ": external data " + key + " " + quote(value) + " is not a number");
        }
    }
}
