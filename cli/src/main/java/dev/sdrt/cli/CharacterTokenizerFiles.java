package dev.sdrt.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A CLIP-format tokenizer (vocab.json + merges.txt) with no merges: each byte of a word is a token.
 * Random-weight pipelines use it, since real vocabularies are not shipped. 514 ids: the 256 byte
 * symbols, the same with the end-of-word mark, start and end of text.
 */
final class CharacterTokenizerFiles {
    private CharacterTokenizerFiles() {
    }

    static void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        List<String> symbols = byteSymbols();
        StringBuilder vocab = new StringBuilder("{");
        int id = 0;
        for (String s : symbols) {
            vocab.append(id == 0 ? "" : ",").append(json(s)).append(':').append(id++);
        }
        for (String s : symbols) {
            vocab.append(',').append(json(s + "</w>")).append(':').append(id++);
        }
        vocab.append(',').append(json("<|startoftext|>")).append(':').append(id++);
        vocab.append(',').append(json("<|endoftext|>")).append(':').append(id).append('}');
        Files.writeString(dir.resolve("vocab.json"), vocab, StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n", StandardCharsets.UTF_8);
    }

    /** The byte-level alphabet: printable Latin-1 bytes stand for themselves, the rest map above U+0100. */
    private static List<String> byteSymbols() {
        List<String> out = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            out.add(String.valueOf(dev.sdrt.runtime.text.ByteLevelAlphabet.charOf(b)));
        }
        return out;
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
