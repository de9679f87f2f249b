package dev.sdrt.runtime.text;

import java.util.Arrays;

/**
 * The reversible byte-to-character table of GPT-2's byte-level BPE, which CLIP reuses.
 *
 * <p>BPE vocabularies are strings, but text must be split into bytes so that every input, in any
 * script, has a spelling. The table gives each of the 256 byte values one visible character: bytes
 * that already are printable Latin-1 characters ({@code '!'..'~'}, {@code '¡'..'¬'},
 * {@code '®'..'ÿ'}) stand for themselves; the other 68 (controls, space, soft hyphen, ...) take the
 * characters U+0100, U+0101, ... in byte order. So the space byte becomes {@code 'Ġ'} (U+0120).
 */
public final class ByteLevelAlphabet {

    private static final char[] CHAR_BY_BYTE = new char[256];
    private static final int[] BYTE_BY_CHAR;

    static {
        char nextSubstitute = 256;
        for (int b = 0; b < 256; b++) {
            CHAR_BY_BYTE[b] = isPrintable(b) ? (char) b : nextSubstitute++;
        }
        BYTE_BY_CHAR = new int[nextSubstitute];
        Arrays.fill(BYTE_BY_CHAR, -1);
        for (int b = 0; b < 256; b++) {
            BYTE_BY_CHAR[CHAR_BY_BYTE[b]] = b;
        }
    }

    private ByteLevelAlphabet() {
    }

    /** Whether byte {@code b} maps to the character with the same code. */
    public static boolean isPrintable(int b) {
        return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    }

    /** The character standing for byte {@code b} (0..255). */
    public static char charOf(int b) {
        if (b < 0 || b > 255) {
            throw new IllegalArgumentException("not a byte value: " + b);
        }
        return CHAR_BY_BYTE[b];
    }

    /** The byte that character {@code c} stands for, or -1 when {@code c} is not in the alphabet. */
    public static int byteOf(char c) {
        return c < BYTE_BY_CHAR.length ? BYTE_BY_CHAR[c] : -1;
    }

    /** Spells {@code bytes} in the alphabet, one character per byte. */
    public static String encode(byte[] bytes) {
        char[] chars = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            chars[i] = CHAR_BY_BYTE[bytes[i] & 0xFF];
        }
        return new String(chars);
    }
}
