package dev.sdrt.runtime.tensor;

import java.util.Locale;
import java.util.Optional;

/**
 * Element type of a {@link Tensor}: its size in bytes and the numpy dtype string that stores it
 * in a {@code .npy} file.
 *
 * <p>{@link #BFLOAT16} has no numpy dtype: numpy itself has no bfloat16, and the one ml_dtypes adds
 * is saved by {@code np.save} as an anonymous 2-byte void ({@code '<V2'}) that loses the type. So
 * {@code numpyDescr()} is empty for it, and {@link Npy} stores bfloat16 only when asked explicitly,
 * as its raw bits under {@code '<u2'} ({@link Npy#writeBfloat16AsUint16}, read back with {@link
 * Npy#readBfloat16FromUint16}); in Python, {@code np.load(f).view(ml_dtypes.bfloat16)} recovers
 * the values.
 */
public enum DType {
    FLOAT32(4, "<f4", true),
    FLOAT16(2, "<f2", true),
    BFLOAT16(2, null, true),
    FLOAT64(8, "<f8", true),
    INT64(8, "<i8", false),
    INT32(4, "<i4", false),
    INT8(1, "|i1", false),
    UINT8(1, "|u1", false),
    /** One byte per element, 0 or 1, as numpy and ONNX store booleans. */
    BOOL(1, "|b1", false);

    private final int byteSize;
    private final String numpyDescr;
    private final boolean floatingPoint;

    DType(int byteSize, String numpyDescr, boolean floatingPoint) {
        this.byteSize = byteSize;
        this.numpyDescr = numpyDescr;
        this.floatingPoint = floatingPoint;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The little-endian numpy dtype string ({@code '<f4'}, {@code '|u1'}, ...) as numpy writes it in
     * a {@code .npy} header; empty for {@link #BFLOAT16}, which numpy lacks.
     */
    public Optional<String> numpyDescr() {
        return Optional.ofNullable(numpyDescr);
    }

    /** True for FLOAT32, FLOAT16, BFLOAT16 and FLOAT64. */
    public boolean isFloatingPoint() {
        return floatingPoint;
    }

    /** Lower-case name as numpy and PyTorch spell it ("float32", "bfloat16", "bool"), for messages. */
    public String displayName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
