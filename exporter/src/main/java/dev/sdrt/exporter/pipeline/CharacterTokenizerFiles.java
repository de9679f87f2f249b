package dev.sdrt.exporter.pipeline;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A CLIP-format tokenizer (vocab.json + merges.txt) with no merges: each byte of a word is a token.
 * Random-weight pipelines use it, since real vocabularies are not shipped. 514 ids: the 256 byte
 * symbols, the same with the end-of-word mark, start and end of text.
 *
 * <p>The symbols are GPT-2's byte-level alphabet, the table the runtime's tokenizer reads them with
 * ({@code dev.sdrt.runtime.text.ByteLevelAlphabet}, outside this module's dependencies; a test
 * checks that the two agree).
 */
public final class CharacterTokenizerFiles {
    private CharacterTokenizerFiles() {
    }

    /** Writes {@code dir/vocab.json} and {@code dir/merges.txt}, creating {@code dir}. */
    public static void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        StringBuilder vocab = new StringBuilder("{");
        int id = 0;
        for (String suffix : new String[] {"", "</w>"}) {
            for (int b = 0; b < 256; b++) {
                vocab.append(id == 0 ? "" : ",").append(json(byteSymbol(b) + suffix)).append(':').append(id++);
            }
        }
        vocab.append(',').append(json("<|startoftext|>")).append(':').append(id++);
        vocab.append(',').append(json("<|endoftext|>")).append(':').append(id).append('}');
        Files.writeString(dir.resolve("vocab.json"), vocab, StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n", StandardCharsets.UTF_8);
    }

    /**
     * The byte-level alphabet's character for byte {@code b}: printable Latin-1 bytes stand for
     * themselves, the other 68 take U+0100, U+0101, ... in byte order.
     */
    static char byteSymbol(int b) {
        if (isPrintable(b)) {
            return (char) b;
        }
        int substitutes = 0;
        for (int below = 0; below < b; below++) {
            if (!isPrintable(below)) {
                substitutes++;
            }
        }
        return (char) (256 + substitutes);
    }

    private static boolean isPrintable(int b) {
        return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    }

    private static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
