package dev.sdrt.runtime.text;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.Gson;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * No CLIP vocabulary is available offline, so these tests build a small one the way CLIP's is built
 * (256 byte symbols in the byte-level table's order, their 256 word-final forms, one token per merge
 * rule, then the two special tokens) and derive the expected ids by hand.
 *
 * <p>Ids of byte symbols, by that order: '!'..'~' are 0..93 (so 'a' = 97 - 33 = 64), 0xA1..0xAC
 * are 94..105, 0xAE..0xFF are 106..187, and the 68 unprintable bytes 0x00..0x20, 0x7F..0xA0, 0xAD
 * are 188..255. A word-final symbol "x</w>" has the id of "x" plus 256. Merge rule k makes token
 * 512 + k; {@code <|startoftext|>} is 512 + 19 = 531 and {@code <|endoftext|>} is 532.
 */
class ClipTokenizerTest {

    private static final List<String> MERGES = List.of(
            "h e",          // 512 he
            "l l",          // 513 ll
            "he ll",        // 514 hell
            "hell o</w>",   // 515 hello</w>
            "! !",          // 516 !!
            "!! !</w>",     // 517 !!!</w>
            "' s</w>",      // 518 's</w>
            "i t</w>",      // 519 it</w>
            "d o",          // 520 do
            "do n</w>",     // 521 don</w>
            "' t</w>",      // 522 't</w>
            "c a",          // 523 ca
            "ca f",         // 524 caf
            "Ã ©</w>",      // 525 Ã©</w>  (é is UTF-8 C3 A9: 'Ã' and '©' in the byte table)
            "caf Ã©</w>",   // 526 cafÃ©</w>
            "w o",          // 527 wo
            "wo r",         // 528 wor
            "wor l",        // 529 worl
            "worl d</w>");  // 530 world</w>

    private static final int HELLO = 515;
    private static final int WORLD = 530;
    private static final int BOS = 531;
    private static final int EOS = 532;

    private static final ClipTokenizer TOKENIZER = ClipTokenizer.of(clipStyleVocab(MERGES), MERGES);

    /** Builds a vocabulary in CLIP's layout for the given merges. */
    static Map<String, Integer> clipStyleVocab(List<String> merges) {
        List<String> byteSymbols = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            if (ByteLevelAlphabet.isPrintable(b)) {
                byteSymbols.add(String.valueOf(ByteLevelAlphabet.charOf(b)));
            }
        }
        for (int b = 0; b < 256; b++) {
            if (!ByteLevelAlphabet.isPrintable(b)) {
                byteSymbols.add(String.valueOf(ByteLevelAlphabet.charOf(b)));
            }
        }
        List<String> tokens = new ArrayList<>(byteSymbols);
        byteSymbols.forEach(symbol -> tokens.add(symbol + "</w>"));
        merges.forEach(merge -> tokens.add(merge.replace(" ", "")));
        tokens.add("<|startoftext|>");
        tokens.add("<|endoftext|>");
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int id = 0; id < tokens.size(); id++) {
            vocab.put(tokens.get(id), id);
        }
        return vocab;
    }

    @Test
    void byteLevelAlphabetKeepsPrintableBytesAndShiftsTheOthersPast255() {
        assertThat(ByteLevelAlphabet.charOf('a')).isEqualTo('a');
        assertThat(ByteLevelAlphabet.charOf(0xE9)).isEqualTo('é');
        assertThat(ByteLevelAlphabet.charOf(0x00)).isEqualTo('\u0100');
        assertThat(ByteLevelAlphabet.charOf(' ')).isEqualTo('Ġ');    // 0x20 is the 33rd unprintable byte
        assertThat(ByteLevelAlphabet.charOf(0x7F)).isEqualTo('\u0121');
        assertThat(ByteLevelAlphabet.charOf(0xAD)).isEqualTo('Ń');    // the 68th and last: U+0143
        Set<Character> seen = new HashSet<>();
        for (int b = 0; b < 256; b++) {
            char c = ByteLevelAlphabet.charOf(b);
            assertThat(seen.add(c)).as("byte %d has its own character", b).isTrue();
            assertThat(ByteLevelAlphabet.byteOf(c)).isEqualTo(b);
        }
        assertThat(ByteLevelAlphabet.byteOf('\u0144')).isEqualTo(-1);
    }

    @Test
    void theHandBuiltVocabularyHasClipsLayout() {
        Map<String, Integer> vocab = clipStyleVocab(MERGES);
        assertThat(vocab).containsEntry("!", 0).containsEntry("a", 64).containsEntry("a</w>", 320)
                .containsEntry("hello</w>", HELLO).containsEntry("<|startoftext|>", BOS)
                .containsEntry("<|endoftext|>", EOS);
        assertThat(TOKENIZER.vocabSize()).isEqualTo(533);
        assertThat(TOKENIZER.startOfTextId()).isEqualTo(BOS);
        assertThat(TOKENIZER.endOfTextId()).isEqualTo(EOS);
        assertThat(TOKENIZER.padId()).isEqualTo(EOS);
    }

    @Test
    void mergesFollowRankOrder() {
        // h e l l o</w>: "h e" (rank 0) first, then "l l", "he ll", "hell o</w>".
        assertThat(TOKENIZER.tokenize("hello")).containsExactly("hello</w>");
        assertThat(TOKENIZER.encode("hello")).containsExactly(HELLO);
        // A word with no applicable rule stays in byte symbols: l o</w> -> 'l' = 75, 'o</w>' = 78 + 256.
        assertThat(TOKENIZER.encode("lo")).containsExactly(75, 334);
    }

    @Test
    void punctuationRunIsOneWord() {
        // "hello!!!" -> words "hello", "!!!"; ! ! !</w> -> "!! !</w>" -> "!!!</w>".
        assertThat(TOKENIZER.tokenize("hello!!!")).containsExactly("hello</w>", "!!!</w>");
        assertThat(TOKENIZER.encode("hello!!!")).containsExactly(HELLO, 517);
    }

    @Test
    void mergeRuleAppliesToAllOccurrencesLeftToRight() {
        // ! ! ! !</w>: "! !" merges positions 0-1; at 2 the pair is ('!', '!</w>'), which has no rule.
        assertThat(TOKENIZER.tokenize("!!!!")).containsExactly("!!", "!", "!</w>");
        assertThat(TOKENIZER.encode("!!!!")).containsExactly(516, 0, 256);
    }

    @Test
    void commaSplitsLetters() {
        // a = 64 + 256, ',' = 44 - 33 + 256, b = 65 + 256
        assertThat(TOKENIZER.encode("a,b")).containsExactly(320, 267, 321);
    }

    @Test
    void contractionsAreTheirOwnWords() {
        assertThat(TOKENIZER.tokenize("it's")).containsExactly("it</w>", "'s</w>");
        assertThat(TOKENIZER.encode("it's")).containsExactly(519, 518);
        assertThat(TOKENIZER.tokenize("don't")).containsExactly("don</w>", "'t</w>");
        assertThat(TOKENIZER.encode("don't")).containsExactly(521, 522);
    }

    @Test
    void everyDigitIsItsOwnWord() {
        // '2' = 50 - 33 + 256 = 273, '0' = 271, '4' = 275
        assertThat(TOKENIZER.tokenize("2024")).containsExactly("2</w>", "0</w>", "2</w>", "4</w>");
        assertThat(TOKENIZER.encode("2024")).containsExactly(273, 271, 273, 275);
    }

    @Test
    void accentedLettersGoThroughTheirUtf8Bytes() {
        // café = c a f Ã ©</w>: "c a", "ca f", "Ã ©</w>", then "caf Ã©</w>".
        assertThat(TOKENIZER.tokenize("café")).containsExactly("cafÃ©</w>");
        assertThat(TOKENIZER.encode("café")).containsExactly(526);
        // ï is C3 AF = 'Ã' '¯'; no rule applies: n=77, a=64, Ã=106+(0xC3-0xAE)=127,
        // ¯=106+(0xAF-0xAE)=107, v=85, e</w>=68+256=324.
        assertThat(TOKENIZER.tokenize("naïve")).containsExactly("n", "a", "Ã", "¯", "v", "e</w>");
        assertThat(TOKENIZER.encode("naïve")).containsExactly(77, 64, 127, 107, 85, 324);
    }

    @Test
    void emojiFallsBackToByteSymbols() {
        // U+1F600 is F0 9F 98 80: 0xF0 is printable (id 106+66=172); 0x9F, 0x98, 0x80 are the
        // unprintable bytes number 65, 58, 34 -> characters U+0141, U+013A, U+0122 and ids 188+65=253,
        // 188+58=246, 188+34=222, the last word-final (+256).
        assertThat(TOKENIZER.tokenize("😀")).containsExactly("ð", "Ł", "ĺ", "Ģ</w>");
        assertThat(TOKENIZER.encode("😀")).containsExactly(172, 253, 246, 478);
    }

    @Test
    void cjkFallsBackToByteSymbols() {
        // 猫 is E7 8C AB: ç = 106+(0xE7-0xAE)=163; 0x8C is unprintable number 46 -> U+012E, id 234;
        // « = 94+(0xAB-0xA1)=104, word-final 360.
        assertThat(TOKENIZER.tokenize("猫")).containsExactly("ç", "Į", "«</w>");
        assertThat(TOKENIZER.encode("猫")).containsExactly(163, 234, 360);
    }

    @Test
    void whitespaceIsCollapsedAndCaseIgnored() {
        assertThat(TOKENIZER.encode("  hello \n\n\t world  ")).containsExactly(HELLO, WORLD);
        assertThat(TOKENIZER.encode("HeLLo\u00a0WORLD")).containsExactly(HELLO, WORLD);
        assertThat(TOKENIZER.encode(" \n ")).isEmpty();
    }

    @Test
    void specialTokensInTextKeepTheirIds() {
        assertThat(TOKENIZER.encode("hello<|endoftext|>world")).containsExactly(HELLO, EOS, WORLD);
    }

    @Test
    void modelRowHasStartEndAndPadding() {
        long[] row = TOKENIZER.encodeForModel("Hello world");
        assertThat(row).hasSize(77);
        assertThat(Arrays.copyOf(row, 4)).containsExactly(BOS, HELLO, WORLD, EOS);
        assertThat(Arrays.stream(row, 4, 77)).allMatch(id -> id == EOS);
    }

    @Test
    void emptyPromptIsStartEndAndPadding() {
        long[] row = TOKENIZER.encodeForModel("");
        assertThat(row[0]).isEqualTo(BOS);
        assertThat(Arrays.stream(row, 1, 77)).allMatch(id -> id == EOS);

        long[] padded = TOKENIZER.withPadToken("!").encodeForModel("", 5);
        assertThat(padded).containsExactly(BOS, EOS, 0, 0, 0);
    }

    /** transformers makes the pad token special, so "!" (SD 2.x's pad) splits the text and is its own token. */
    @Test
    void aPadTokenOtherThanEndOfTextSplitsThePromptAsTransformersDoes() {
        ClipTokenizer bang = TOKENIZER.withPadToken("!");
        java.util.List<String> expected = new java.util.ArrayList<>(TOKENIZER.tokenize("a fox"));
        expected.add("!");
        expected.addAll(TOKENIZER.tokenize("in snow"));
        expected.add("!");
        assertThat(bang.tokenize("a fox!in snow!")).containsExactlyElementsOf(expected);
        assertThat(bang.encode("fox!")).endsWith(0);
        assertThat(TOKENIZER.tokenize("a fox!")).doesNotContain("!");
    }

    @Test
    void longPromptIsCutToKeepTheEndToken() {
        String prompt = String.join(" ", Collections.nCopies(100, "hello"));
        long[] row = TOKENIZER.encodeForModel(prompt);
        assertThat(row).hasSize(77);
        assertThat(row[0]).isEqualTo(BOS);
        assertThat(Arrays.stream(row, 1, 76)).allMatch(id -> id == HELLO);
        assertThat(row[76]).isEqualTo(EOS);

        long[] exactFit = TOKENIZER.encodeForModel(String.join(" ", Collections.nCopies(75, "hello")));
        assertThat(exactFit[75]).isEqualTo(HELLO);
        assertThat(exactFit[76]).isEqualTo(EOS);
    }

    @Test
    void promptThatDoesNotFitSaysWhatWasCut() {
        String prompt = String.join(" ", Collections.nCopies(100, "hello"));
        ClipTokenizer.EncodedPrompt encoded = TOKENIZER.encodePrompt(prompt, 77);
        assertThat(encoded.inputIds()).isEqualTo(TOKENIZER.encodeForModel(prompt));
        assertThat(encoded.truncated()).isTrue();
        assertThat(encoded.droppedTokens()).isEqualTo(25);
        assertThat(encoded.droppedText()).isEqualTo(String.join(" ", Collections.nCopies(25, "hello")));

        ClipTokenizer.EncodedPrompt exactFit = TOKENIZER.encodePrompt(String.join(" ", Collections.nCopies(75, "hello")), 77);
        assertThat(exactFit.truncated()).isFalse();
        assertThat(exactFit.droppedTokens()).isZero();
        assertThat(exactFit.droppedText()).isEmpty();
    }

    @Test
    void truncationIsLoggedWithTheRemovedPartAsDiffusersDoes() {
        assertThat(warningsWhile(() -> TOKENIZER.encodeForModel("hello world hello world!!!", 5)))
                .containsExactly("The following part of your input was truncated because CLIP can only handle sequences"
                        + " up to 5 tokens: world !!!");
        assertThat(warningsWhile(() -> TOKENIZER.encodeForModel("hello world hello", 5))).as("fits").isEmpty();

        List<String> warnings = warningsWhile(() -> TOKENIZER.encodeForModel(String.join(" ", Collections.nCopies(10_000, "hello"))));
        assertThat(warnings).singleElement().asString()
                .hasSizeLessThan(700).endsWith("hello he... (9925 tokens in all)");
    }

    /** The warnings ClipTokenizer logs while {@code action} runs, kept off the console. */
    private static List<String> warningsWhile(Runnable action) {
        Logger logger = Logger.getLogger(ClipTokenizer.class.getName());
        List<String> messages = new ArrayList<>();
        Handler capture = new Handler() {
            @Override
            public void publish(LogRecord record) {
                if (record.getLevel() == Level.WARNING) {
                    messages.add(record.getMessage());
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        boolean useParentHandlers = logger.getUseParentHandlers();
        logger.addHandler(capture);
        logger.setUseParentHandlers(false);
        try {
            action.run();
        } finally {
            logger.removeHandler(capture);
            logger.setUseParentHandlers(useParentHandlers);
        }
        return messages;
    }

    @Test
    void htmlCharacterReferencesAreDecodedTwiceAsClipDoes() {
        assertThat(TOKENIZER.tokenize("hello &amp;amp; world")).containsExactly("hello</w>", "&</w>", "world</w>");
        assertThat(TOKENIZER.tokenize("it&#39;s")).isEqualTo(TOKENIZER.tokenize("it's"));
        assertThat(TOKENIZER.tokenize("it&#x27;s")).isEqualTo(TOKENIZER.tokenize("it's"));
        assertThat(TOKENIZER.tokenize("&lt;3")).containsExactly("<</w>", "3</w>");
        assertThat(TOKENIZER.encode("hello&nbsp;world")).as("a no-break space is whitespace")
                .containsExactly(HELLO, WORLD);
        assertThat(TOKENIZER.tokenize("&bogus;")).as("unknown: left as is")
                .containsExactly("&</w>", "b", "o", "g", "u", "s</w>", ";</w>");
        // As in the reference, a decoded special token is the special token.
        assertThat(TOKENIZER.encode("hello&lt;|endoftext|&gt;world")).containsExactly(HELLO, EOS, WORLD);
    }

    @Test
    void decodeJoinsWordsWithSpaces() {
        int[] ids = TOKENIZER.encode("Hello, café 😀 2024!!!");
        assertThat(TOKENIZER.decode(ids)).isEqualTo("hello , café 😀 2 0 2 4 !!!");
        int[] row = Arrays.stream(TOKENIZER.encodeForModel("hello world", 8)).mapToInt(id -> (int) id).toArray();
        assertThat(TOKENIZER.decode(row)).isEqualTo("hello world");
        // A lone lead byte of a 4-byte sequence is not UTF-8.
        assertThat(TOKENIZER.decode(new int[] {172})).isEqualTo("\uFFFD");
        assertThatThrownBy(() -> TOKENIZER.decode(new int[] {9999})).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void unknownTokenBecomesEndOfText() {
        // A vocabulary without "q</w>" (as CLIP's never is): the word maps to the unknown id.
        Map<String, Integer> vocab = new LinkedHashMap<>(clipStyleVocab(MERGES));
        vocab.remove("q</w>");
        ClipTokenizer incomplete = ClipTokenizer.of(vocab, MERGES);
        assertThat(incomplete.encode("q hello")).containsExactly(EOS, HELLO);
    }

    @Test
    void loadsCheckpointFiles(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("vocab.json"), new Gson().toJson(clipStyleVocab(MERGES)),
                StandardCharsets.UTF_8);
        List<String> mergeLines = new ArrayList<>();
        mergeLines.add("#version: 0.2");
        mergeLines.addAll(MERGES);
        Files.write(dir.resolve("merges.txt"), mergeLines, StandardCharsets.UTF_8);

        ClipTokenizer loaded = ClipTokenizer.load(dir);
        for (String text : List.of("hello!!!", "it's café 2024", "naïve 😀 猫", "")) {
            assertThat(loaded.encodeForModel(text)).isEqualTo(TOKENIZER.encodeForModel(text));
        }
        assertThat(loaded.padId()).isEqualTo(EOS);

        // SD 2.x / SDXL's second tokenizer: pad_token "!" written as a serialized AddedToken.
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"model_max_length\": 77, \"pad_token\": {\"__type\": \"AddedToken\", \"content\": \"!\","
                        + " \"lstrip\": false, \"rstrip\": false, \"normalized\": true, \"single_word\": false}}",
                StandardCharsets.UTF_8);
        assertThat(ClipTokenizer.load(dir).padId()).isEqualTo(0);

        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"pad_token\": \"<|endoftext|>\"}",
                StandardCharsets.UTF_8);
        assertThat(ClipTokenizer.load(dir).padId()).isEqualTo(EOS);
    }

    @Test
    void rejectsMalformedInput() {
        assertThatThrownBy(() -> ClipTokenizer.of(clipStyleVocab(MERGES), List.of("a b c")))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ClipTokenizer.of(Map.of("a", 0), List.of()))
                .hasMessageContaining("<|endoftext|>");
        assertThatThrownBy(() -> TOKENIZER.withPadToken("<pad>")).hasMessageContaining("<pad>");
        assertThatThrownBy(() -> TOKENIZER.encodeForModel("hello", 1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void concurrentEncodingAgrees() {
        long[] expected = TOKENIZER.encodeForModel("it's a naïve café, 2024!!!");
        assertThat(IntStream.range(0, 64).parallel()
                .mapToObj(i -> TOKENIZER.encodeForModel("it's a naïve café, 2024!!!")))
                .allMatch(row -> Arrays.equals(row, expected));
    }
}
