package dev.sdrt.exporter.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.runtime.text.ByteLevelAlphabet;
import dev.sdrt.runtime.text.ClipTokenizer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The random-weight pipelines' tokenizer, read back by the runtime's CLIP tokenizer. */
class CharacterTokenizerFilesTest {
    @TempDir
    Path tmp;

    @Test
    void itsAlphabetIsTheRuntimes() {
        for (int b = 0; b < 256; b++) {
            assertThat(CharacterTokenizerFiles.byteSymbol(b)).as("byte %d", b).isEqualTo(ByteLevelAlphabet.charOf(b));
        }
    }

    @Test
    void theRuntimeReadsItAndSpellsEveryWordByteByByte() throws Exception {
        CharacterTokenizerFiles.write(tmp.resolve("tokenizer"));
        ClipTokenizer tokenizer = ClipTokenizer.load(tmp.resolve("tokenizer"));
        assertThat(tokenizer.vocabSize()).isEqualTo(514);
        assertThat(tokenizer.startOfTextId()).isEqualTo(512);
        assertThat(tokenizer.endOfTextId()).isEqualTo(513);
        assertThat(tokenizer.tokenize("a fox")).containsExactly("a</w>", "f", "o", "x</w>");
        assertThat(tokenizer.encode("ab")).containsExactly('a', 256 + 'b');
    }
}
