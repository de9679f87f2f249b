package dev.sdrt.runtime.trt;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Copies between native memory and files in windows a ByteBuffer can hold (TensorRT plans of large
 * models pass 2 GiB, a ByteBuffer's limit). Each window is a pointer moved to its offset, so its
 * buffer starts at position 0: a buffer taken at a pointer's position instead starts at the base
 * address with that position set, which counts the offset twice and caps the window at 2 GiB.
 */
public final class NativeMemoryFiles {

    /** The window size: 1 GiB. */
    public static final int CHUNK = 1 << 30;

    private NativeMemoryFiles() {}

    /** Writes {@code size} bytes at {@code data} into {@code channel} from file position 0. */
    public static void write(Pointer data, long size, FileChannel channel) throws IOException {
        write(data, size, channel, CHUNK);
    }

    /** Reads {@code size} bytes of {@code file} into {@code target}, which holds at least that many. */
    public static void read(Path file, BytePointer target, long size) throws IOException {
        read(file, target, size, CHUNK);
    }

    static void write(Pointer data, long size, FileChannel channel, int chunk) throws IOException {
        BytePointer bytes = new BytePointer(data).capacity(size); // a plan's pointer may not know its size
        for (long offset = 0; offset < size; offset += chunk) {
            ByteBuffer window = window(bytes, offset, Math.min(chunk, size - offset));
            while (window.hasRemaining()) {
                channel.write(window, offset + window.position());
            }
        }
    }

    static void read(Path file, BytePointer target, long size, int chunk) throws IOException {
        try (FileChannel channel = FileChannel.open(file)) {
            for (long offset = 0; offset < size; offset += chunk) {
                ByteBuffer window = window(target, offset, Math.min(chunk, size - offset));
                while (window.hasRemaining()) {
                    if (channel.read(window, offset + window.position()) < 0) {
                        throw new EOFException(file + " ended early at byte " + (offset + window.position()) + " of " + size);
                    }
                }
            }
        }
    }

    /** {@code length} bytes from {@code offset}, as a buffer whose position 0 is that offset. */
    private static ByteBuffer window(BytePointer base, long offset, long length) {
        return base.getPointer(offset).limit(length).asByteBuffer();
    }
}
