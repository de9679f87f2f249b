package dev.sdrt.runtime.trt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Plans pass 1 GiB, so they move in several windows; with windows of a few hundred bytes the same
 * code is exercised on a small buffer (no GPU needed: javacpp's native memory is plain host memory).
 */
class NativeMemoryFilesTest {
    @TempDir
    Path tmp;

    private static byte[] pattern(int size) {
        byte[] bytes = new byte[size];
        for (int i = 0; i < size; i++) {
            bytes[i] = (byte) (i * 31 + i / 251);
        }
        return bytes;
    }

    @Test
    void manyWindowsWriteAndReadBackEveryByteInPlace() throws Exception {
        byte[] expected = pattern(2500);
        Path file = tmp.resolve("plan.bin");
        try (BytePointer source = new BytePointer(expected.length)) {
            source.put(expected);
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                // as TensorRT hands a plan over: a bare pointer that does not know its size
                NativeMemoryFiles.write(new Pointer(source), expected.length, channel, 1000);
            }
        }
        assertThat(Files.size(file)).isEqualTo(expected.length);
        assertThat(Files.readAllBytes(file)).isEqualTo(expected);

        try (BytePointer target = new BytePointer(expected.length)) {
            NativeMemoryFiles.read(file, target, expected.length, 300);
            byte[] back = new byte[expected.length];
            target.get(back);
            assertThat(back).isEqualTo(expected);
        }
    }

    @Test
    void aShortFileIsAnError() throws Exception {
        Path file = Files.write(tmp.resolve("short.bin"), pattern(700));
        try (BytePointer target = new BytePointer(1000)) {
            assertThatThrownBy(() -> NativeMemoryFiles.read(file, target, 1000, 300)).isInstanceOf(EOFException.class)
                    .hasMessageContaining("short.bin ended early at byte 700 of 1000");
        }
    }
}
