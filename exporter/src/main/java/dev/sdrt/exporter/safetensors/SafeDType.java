package dev.sdrt.exporter.safetensors;

import java.util.Optional;

/**
 * The element types a safetensors header can name, spelled as in the format ("F32", "BF16", ...).
 * Every type of the format is recognized so that any checkpoint opens and lists; converting values to
 * float is offered for F32, F16 and BF16 only (see {@link SafeTensor#toFloatArray()}).
 */
public enum SafeDType {
    BOOL(1),
    U8(1),
    I8(1),
    F8_E5M2(1),
    F8_E4M3(1),
    I16(2),
    U16(2),
    F16(2),
    BF16(2),
    I32(4),
    U32(4),
    F32(4),
    I64(8),
    U64(8),
    F64(8);

    private final int byteSize;

    SafeDType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The type named {@code headerName} in a header (exact, case-sensitive, as the format requires). */
    public static Optional<SafeDType> fromHeaderName(String headerName) {
        for (SafeDType type : values()) {
            if (type.name().equals(headerName)) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }
}
