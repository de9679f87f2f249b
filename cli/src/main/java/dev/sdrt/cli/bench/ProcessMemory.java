package dev.sdrt.cli.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * This process's resident memory (JVM heap and native allocations of ONNX Runtime together), read
 * from {@code /proc/self/status}. On the CPU this is the only memory there is to report; where
 * {@code /proc} is missing every reading is -1 and the report says "n/a".
 */
final class ProcessMemory {
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

    private ProcessMemory() {
    }

    /** Resident set size now, in bytes, or -1. */
    static long rssBytes() {
        return field("VmRSS:");
    }

    /** Peak resident set size since start or since the last {@link #resetPeak()}, in bytes, or -1. */
    static long peakBytes() {
        return field("VmHWM:");
    }

    /** Resets the peak to the current RSS (Linux 4.0+: "5" into clear_refs); false where that is not possible. */
    static boolean resetPeak() {
        try {
            Files.writeString(CLEAR_REFS, "5");
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private static long field(String name) {
        try {
            List<String> lines = Files.readAllLines(STATUS);
            for (String line : lines) {
                if (line.startsWith(name)) {
                    String[] f = line.substring(name.length()).trim().split("\\s+");
                    long kb = Long.parseLong(f[0]);
                    return kb * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or /proc not mounted
        }
        return -1;
    }
}
