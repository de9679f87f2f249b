package dev.sdrt.runtime.text;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * CLIP's byte-level BPE tokenizer, as OpenAI's CLIP and transformers' {@code CLIPTokenizer} define
 * it, for the text encoders of Stable Diffusion 1.x/2.x, SDXL and SD3.
 *
 * <p>Encoding a prompt:
 * <ol>
 *   <li>clean: decode HTML character references twice, as OpenAI's CLIP does with
 *       {@code html.unescape(html.unescape(text))} ({@code "&amp;amp;"} becomes {@code "&"}; see
 *       {@link HtmlEntities}), collapse every whitespace run to one space, strip, lower-case;</li>
 *   <li>split into words with CLIP's pattern: the two special tokens, the contractions 's 't 're 've
 *       'm 'll 'd, runs of letters, single digits, runs of other non-space characters;</li>
 *   <li>spell each word's UTF-8 bytes in the {@link ByteLevelAlphabet}, one symbol per byte, and mark
 *       the word's end by appending {@code </w>} to its last symbol;</li>
 *   <li>BPE: repeatedly merge the adjacent pair whose merge rule comes first in merges.txt, all its
 *       occurrences left to right, until no adjacent pair has a rule;</li>
 *   <li>look the resulting symbols up in the vocabulary.</li>
 * </ol>
 *
 * <p>OpenAI's tokenizer runs ftfy's {@code fix_text} (which repairs mojibake, among other things)
 * before unescaping; that is not reproduced. transformers' {@code CLIPTokenizer}, which diffusers
 * uses, calls {@code fix_text} (when ftfy is installed) but not {@code html.unescape}, so for a prompt
 * with character references its tokens can differ from OpenAI's; this follows OpenAI's.
 *
 * <p>A prompt longer than the text encoder's context is cut to fit; {@link #encodePrompt} says what
 * was cut, and {@link #encodeForModel} logs it as a warning, as diffusers does.
 *
 * <p>Instances are immutable apart from a bounded per-word cache, and safe to share between threads.
 */
public final class ClipTokenizer {

    public static final String START_OF_TEXT = "<|startoftext|>";
    public static final String END_OF_TEXT = "<|endoftext|>";
    public static final String END_OF_WORD = "</w>";
    /** CLIP's context length: every text encoder of the SD family reads 77 positions. */
    public static final int DEFAULT_MAX_LENGTH = 77;

    private static final Logger LOG = Logger.getLogger(ClipTokenizer.class.getName());
    /** The truncation warning quotes at most this much of what was cut. */
    private static final int MAX_WARNING_EXCERPT_CHARS = 500;

    /**
     * CLIP's vocabulary is 256 byte symbols, their 256 word-final forms, the merges, and the two
     * special tokens, 49408 in all; OpenAI's loader and transformers' read only the first
     * 49152 - 256 - 2 merges of the file for that reason, and so does this one.
     */
    private static final int MAX_MERGES = 49152 - 256 - 2;

    /** Beyond this many distinct words the cache stops growing, so hostile input cannot fill memory. */
    private static final int MAX_CACHED_WORDS = 100_000;

    private static final Pattern WHITESPACE_RUN =
            Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);

    private static final Pattern WORD = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d"
                    + "|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE | Pattern.UNICODE_CHARACTER_CLASS);

    private final Map<String, Integer> idsByToken;
    private final Map<Integer, String> tokensById;
    /** Rank of each merge rule, keyed by "left right" (symbols never contain a space). */
    private final Map<String, Integer> mergeRanks;
    private final int startOfTextId;
    private final int endOfTextId;
    private final int padId;
    private final Map<String, List<String>> wordCache;

    private ClipTokenizer(Map<String, Integer> idsByToken, Map<Integer, String> tokensById,
            Map<String, Integer> mergeRanks, int padId, Map<String, List<String>> wordCache) {
        this.idsByToken = idsByToken;
        this.tokensById = tokensById;
        this.mergeRanks = mergeRanks;
        this.startOfTextId = requireToken(idsByToken, START_OF_TEXT);
        this.endOfTextId = requireToken(idsByToken, END_OF_TEXT);
        this.padId = padId;
        this.wordCache = wordCache;
    }

    /**
     * A tokenizer from a vocabulary {token: id} and merge rules, each "left right" as one line of
     * merges.txt (without its "#version" header). Pads with {@code <|endoftext|>}, as SD 1.x does.
     */
    public static ClipTokenizer of(Map<String, Integer> vocab, List<String> merges) {
        Map<String, Integer> idsByToken = Map.copyOf(vocab);
        Map<Integer, String> tokensById = new HashMap<>();
        for (Map.Entry<String, Integer> entry : idsByToken.entrySet()) {
            String previous = tokensById.put(entry.getValue(), entry.getKey());
            if (previous != null) {
                throw new IllegalArgumentException("id " + entry.getValue() + " is given to both '"
                        + previous + "' and '" + entry.getKey() + "'");
            }
        }
        Map<String, Integer> mergeRanks = new HashMap<>();
        int count = Math.min(merges.size(), MAX_MERGES);
        for (int rank = 0; rank < count; rank++) {
            String[] pair = merges.get(rank).strip().split("\\s+");
            if (pair.length != 2) {
                throw new IllegalArgumentException(
                        "merge rule " + rank + " is not two symbols: '" + merges.get(rank) + "'");
            }
            mergeRanks.put(pair[0] + " " + pair[1], rank);
        }
        return new ClipTokenizer(idsByToken, Map.copyOf(tokensById), Map.copyOf(mergeRanks),
                requireToken(idsByToken, END_OF_TEXT), new ConcurrentHashMap<>());
    }

    /**
     * Loads a checkpoint's tokenizer folder: {@code vocab.json}, {@code merges.txt} and, when
     * present, {@code tokenizer_config.json}, whose {@code pad_token} sets the padding token (SD 2.x
     * and SDXL's second tokenizer pad with "!" rather than {@code <|endoftext|>}).
     */
    public static ClipTokenizer load(Path tokenizerDir) throws IOException {
        Map<String, Integer> vocab = new HashMap<>();
        JsonObject vocabJson = JsonParser.parseString(
                Files.readString(tokenizerDir.resolve("vocab.json"), StandardCharsets.UTF_8))
                .getAsJsonObject();
        for (Map.Entry<String, JsonElement> entry : vocabJson.entrySet()) {
            vocab.put(entry.getKey(), entry.getValue().getAsInt());
        }

        List<String> merges = new ArrayList<>();
        List<String> lines = Files.readAllLines(tokenizerDir.resolve("merges.txt"), StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            boolean versionHeader = i == 0 && line.startsWith("#version");
            if (!versionHeader && !line.isBlank()) {
                merges.add(line);
            }
        }

        ClipTokenizer tokenizer = of(vocab, merges);
        Path configFile = tokenizerDir.resolve("tokenizer_config.json");
        if (Files.exists(configFile)) {
            JsonObject config = JsonParser.parseString(Files.readString(configFile, StandardCharsets.UTF_8))
                    .getAsJsonObject();
            JsonElement padToken = config.get("pad_token");
            if (padToken != null && !padToken.isJsonNull()) {
                // Either a plain string or a serialized AddedToken {"content": "...", ...}.
                String content = padToken.isJsonObject()
                        ? padToken.getAsJsonObject().get("content").getAsString()
                        : padToken.getAsString();
                tokenizer = tokenizer.withPadToken(content);
            }
        }
        return tokenizer;
    }

    /** The same tokenizer padding with {@code padToken}, which must be in the vocabulary. */
    public ClipTokenizer withPadToken(String padToken) {
        return new ClipTokenizer(idsByToken, tokensById, mergeRanks, requireToken(idsByToken, padToken),
                wordCache);
    }

    public int startOfTextId() {
        return startOfTextId;
    }

    public int endOfTextId() {
        return endOfTextId;
    }

    public int padId() {
        return padId;
    }

    public int vocabSize() {
        return idsByToken.size();
    }

    /**
     * The BPE tokens of {@code text}, without start and end tokens. A pad token other than the start
     * and end tokens (SD 2.x and SDXL's second tokenizer pad with "!") is a special token to
     * transformers too: it splits the raw text at each occurrence and stands for itself, as one token
     * without the end-of-word mark, so "snow!" is "snow" then "!" rather than "snow" then "!</w>".
     */
    public List<String> tokenize(String text) {
        String pad = tokensById.get(padId);
        if (pad == null || pad.equals(START_OF_TEXT) || pad.equals(END_OF_TEXT) || !text.contains(pad)) {
            return tokenizeSegment(text);
        }
        List<String> tokens = new ArrayList<>();
        int from = 0;
        for (int at = text.indexOf(pad); at >= 0; at = text.indexOf(pad, from)) {
            tokens.addAll(tokenizeSegment(text.substring(from, at)));
            tokens.add(pad);
            from = at + pad.length();
        }
        tokens.addAll(tokenizeSegment(text.substring(from)));
        return tokens;
    }

    private List<String> tokenizeSegment(String text) {
        List<String> tokens = new ArrayList<>();
        Matcher words = WORD.matcher(clean(text));
        while (words.find()) {
            String word = words.group();
            if (word.equals(START_OF_TEXT) || word.equals(END_OF_TEXT)) {
                tokens.add(word);
            } else {
                tokens.addAll(bpe(ByteLevelAlphabet.encode(word.getBytes(StandardCharsets.UTF_8))));
            }
        }
        return tokens;
    }

    /**
     * The token ids of {@code text}, without start and end tokens. A token missing from the
     * vocabulary (possible only with an incomplete vocabulary) becomes {@code <|endoftext|>}, the
     * unknown token of CLIP's tokenizer config.
     */
    public int[] encode(String text) {
        List<String> tokens = tokenize(text);
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = idsByToken.getOrDefault(tokens.get(i), endOfTextId);
        }
        return ids;
    }

    /** {@link #encodeForModel(String, int)} for CLIP's context of {@value #DEFAULT_MAX_LENGTH}. */
    public long[] encodeForModel(String prompt) {
        return encodeForModel(prompt, DEFAULT_MAX_LENGTH);
    }

    /**
     * The text encoder's {@code input_ids} row, as {@link #encodePrompt}; when the prompt had to be
     * cut, logs a warning (java.util.logging, this class's name) with the part that was removed, in
     * diffusers' words.
     */
    public long[] encodeForModel(String prompt, int maxLength) {
        EncodedPrompt encoded = encodePrompt(prompt, maxLength);
        if (encoded.truncated()) {
            LOG.warning(() -> truncationWarning(encoded, maxLength));
        }
        return encoded.inputIds();
    }

    /**
     * A prompt as the text encoder reads it, and what of it did not fit.
     *
     * @param inputIds start token, the prompt's tokens that fit, end token, then padding
     * @param droppedTokens how many of the prompt's tokens were cut off the end; 0 when all fit
     * @param droppedText those tokens decoded back to text; "" when none were cut
     */
    public record EncodedPrompt(long[] inputIds, int droppedTokens, String droppedText) {
        public boolean truncated() {
            return droppedTokens > 0;
        }
    }

    /**
     * The text encoder's {@code input_ids} row: start token, the prompt's tokens cut to
     * {@code maxLength - 2}, end token, then the pad token up to {@code maxLength}, with what was cut.
     * The end token is always present, since the pooled output is read at its position.
     */
    public EncodedPrompt encodePrompt(String prompt, int maxLength) {
        if (maxLength < 2) {
            throw new IllegalArgumentException("maxLength must leave room for start and end tokens: " + maxLength);
        }
        int[] ids = encode(prompt);
        int kept = Math.min(ids.length, maxLength - 2);
        long[] row = new long[maxLength];
        row[0] = startOfTextId;
        for (int i = 0; i < kept; i++) {
            row[1 + i] = ids[i];
        }
        row[1 + kept] = endOfTextId;
        for (int i = 2 + kept; i < maxLength; i++) {
            row[i] = padId;
        }
        int[] dropped = Arrays.copyOfRange(ids, kept, ids.length);
        return new EncodedPrompt(row, dropped.length, dropped.length == 0 ? "" : decode(dropped));
    }

    /** diffusers' warning, with the removed text cut short for a prompt far too long. */
    private static String truncationWarning(EncodedPrompt encoded, int maxLength) {
        String removed = encoded.droppedText();
        if (removed.length() > MAX_WARNING_EXCERPT_CHARS) {
            removed = removed.substring(0, MAX_WARNING_EXCERPT_CHARS) + "... (" + encoded.droppedTokens()
                    + " tokens in all)";
        }
        return "The following part of your input was truncated because CLIP can only handle sequences up to "
                + maxLength + " tokens: " + removed;
    }

    /**
     * The text of {@code ids}: start and end tokens are dropped, each {@code </w>} becomes a space,
     * bytes that are not valid UTF-8 become U+FFFD, and the result is stripped. Decode a padded
     * model row only up to its end token when the pad token is not {@code <|endoftext|>}.
     */
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id == startOfTextId || id == endOfTextId) {
                continue;
            }
            String token = tokensById.get(id);
            if (token == null) {
                throw new IllegalArgumentException("id not in the vocabulary: " + id);
            }
            boolean endsWord = token.endsWith(END_OF_WORD);
            String symbols = endsWord ? token.substring(0, token.length() - END_OF_WORD.length()) : token;
            for (int i = 0; i < symbols.length(); i++) {
                int b = ByteLevelAlphabet.byteOf(symbols.charAt(i));
                if (b < 0) {
                    throw new IllegalArgumentException("token " + id + " '" + token
                            + "' has a character outside the byte-level alphabet");
                }
                bytes.write(b);
            }
            if (endsWord) {
                bytes.write(' ');
            }
        }
        return bytes.toString(StandardCharsets.UTF_8).strip();
    }

    /**
     * CLIP's basic_clean (without ftfy), whitespace_clean and lower(): character references decoded
     * twice, whitespace runs to one space, stripped, lower-cased.
     */
    private static String clean(String text) {
        String unescaped = HtmlEntities.unescape(HtmlEntities.unescape(text));
        return WHITESPACE_RUN.matcher(unescaped).replaceAll(" ").strip().toLowerCase(Locale.ROOT);
    }

    /** BPE of one word spelled in the byte-level alphabet; the last symbol carries {@code </w>}. */
    private List<String> bpe(String word) {
        List<String> cached = wordCache.get(word);
        if (cached != null) {
            return cached;
        }
        List<String> symbols = new ArrayList<>(word.length());
        for (int i = 0; i < word.length(); i++) {
            symbols.add(String.valueOf(word.charAt(i)));
        }
        int last = symbols.size() - 1;
        symbols.set(last, symbols.get(last) + END_OF_WORD);

        while (symbols.size() > 1) {
            int bestRank = Integer.MAX_VALUE;
            int bestAt = -1;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer rank = mergeRanks.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (rank != null && rank < bestRank) {
                    bestRank = rank;
                    bestAt = i;
                }
            }
            if (bestAt < 0) {
                break;
            }
            symbols = mergeAll(symbols, symbols.get(bestAt), symbols.get(bestAt + 1));
        }

        List<String> tokens = List.copyOf(symbols);
        if (wordCache.size() < MAX_CACHED_WORDS) {
            wordCache.put(word, tokens);
        }
        return tokens;
    }

    /** Replaces every adjacent (left, right), scanning left to right, by their concatenation. */
    private static List<String> mergeAll(List<String> symbols, String left, String right) {
        List<String> merged = new ArrayList<>(symbols.size());
        int i = 0;
        while (i < symbols.size()) {
            if (i + 1 < symbols.size() && symbols.get(i).equals(left) && symbols.get(i + 1).equals(right)) {
                merged.add(left + right);
                i += 2;
            } else {
                merged.add(symbols.get(i));
                i += 1;
            }
        }
        return merged;
    }

    private static int requireToken(Map<String, Integer> idsByToken, String token) {
        Integer id = idsByToken.get(token);
        if (id == null) {
            throw new IllegalArgumentException("token '" + token + "' is not in the vocabulary");
        }
        return id;
    }
}
