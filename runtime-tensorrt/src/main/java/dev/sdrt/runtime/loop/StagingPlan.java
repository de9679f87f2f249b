package dev.sdrt.runtime.loop;

import java.util.ArrayList;
import java.util.List;

/**
 * Where the tensors of one batched transfer sit in a pinned staging buffer, and the copies that move
 * them: the host packs every tensor into one staging region, then each run of tensors that are also
 * contiguous on the device (views of one allocation side by side) moves with one copy, the others
 * with one copy each. Pure arithmetic, so it is tested without a GPU.
 *
 * <p>Tensors start at {@link #ALIGNMENT}-byte offsets in the staging buffer unless they continue the
 * previous tensor's device range, in which case they follow it without a gap (so the run stays one
 * copy).
 */
final class StagingPlan {

    /** Alignment of each copy's start in the staging buffer (a cache line, and what DMA engines like). */
    static final int ALIGNMENT = 64;

    /**
     * One copy between the staging buffer and the device.
     *
     * @param stagingOffset bytes from the staging buffer's start
     * @param deviceAddress the device address of the first tensor of the run
     * @param bytes length of the run
     * @param first index of the run's first tensor
     * @param count tensors in the run
     */
    record Copy(long stagingOffset, long deviceAddress, long bytes, int first, int count) {
    }

    private final long[] offsets;
    private final long end;
    private final List<Copy> copies;

    private StagingPlan(long[] offsets, long end, List<Copy> copies) {
        this.offsets = offsets;
        this.end = end;
        this.copies = List.copyOf(copies);
    }

    /**
     * Lays out tensors of {@code bytes[i]} bytes at device addresses {@code deviceAddresses[i]} in a
     * staging region starting at or after {@code base}. A run of tensors moves as one copy only when
     * they are views of one allocation ({@code allocations[i]}, compared by identity): two allocations
     * that happen to touch are still copied apart, as a copy must not span allocations.
     */
    static StagingPlan of(long base, long[] deviceAddresses, long[] bytes, Object[] allocations) {
        if (deviceAddresses.length != bytes.length || allocations.length != bytes.length) {
            throw new IllegalArgumentException(deviceAddresses.length + " addresses and " + allocations.length
                    + " allocations for " + bytes.length + " sizes");
        }
        if (base < 0) {
            throw new IllegalArgumentException("negative staging offset " + base);
        }
        long[] offsets = new long[bytes.length];
        List<Copy> copies = new ArrayList<>();
        long at = align(base);
        Copy run = null;
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] < 0) {
                throw new IllegalArgumentException("tensor " + i + " has " + bytes[i] + " bytes");
            }
            boolean continues = run != null && run.deviceAddress() + run.bytes() == deviceAddresses[i]
                    && allocations[run.first()] == allocations[i];
            if (continues) {
                offsets[i] = run.stagingOffset() + run.bytes();
                run = new Copy(run.stagingOffset(), run.deviceAddress(), run.bytes() + bytes[i], run.first(), run.count() + 1);
            } else {
                if (run != null) {
                    copies.add(run);
                }
                offsets[i] = align(at);
                run = new Copy(offsets[i], deviceAddresses[i], bytes[i], i, 1);
            }
            at = offsets[i] + bytes[i];
        }
        if (run != null) {
            copies.add(run);
        }
        copies.removeIf(c -> c.bytes() == 0);
        return new StagingPlan(offsets, at, copies);
    }

    static long align(long offset) {
        return (offset + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Where tensor {@code index} starts in the staging buffer, in bytes. */
    long offset(int index) {
        return offsets[index];
    }

    /** The first byte after the region: the staging buffer must hold at least this many bytes. */
    long end() {
        return end;
    }

    /** The copies, in tensor order. */
    List<Copy> copies() {
        return copies;
    }
}
