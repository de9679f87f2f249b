package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.trt.NativeMemoryFiles;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Moves native memory (TensorRT plans and timing caches) to and from files ({@link NativeMemoryFiles}:
 * plans of large models exceed 2 GiB), always writing through a temporary file.
 */
final class NativeFiles {

    private NativeFiles() {}

    /** Writes {@code size} bytes at {@code data} to {@code target}: a temp file in the same folder, then a move. */
    static void write(Pointer data, long size, Path target) throws IOException {
        Path folder = target.toAbsolutePath().getParent();
        Files.createDirectories(folder);
        Path temp = Files.createTempFile(folder, "." + target.getFileName(), ".tmp");
        try {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.WRITE)) {
                NativeMemoryFiles.write(data, size, channel);
                channel.force(false);
            }
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Reads a whole file into new native memory (freed when the returned pointer is closed). */
    static BytePointer read(Path file) throws IOException {
        long size = Files.size(file);
        BytePointer bytes = new BytePointer(Math.max(size, 1)).capacity(size);
        try {
            NativeMemoryFiles.read(file, bytes, size);
        } catch (IOException | RuntimeException e) {
            bytes.close();
            throw e;
        }
        return bytes;
    }
}
