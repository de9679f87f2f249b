package dev.sdrt.calibration;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Calibration prompts: one prompt per line; blank lines and lines whose first non-blank character
 * is {@code #} are skipped. sdrt ships a default list of 32 varied prompts.
 */
public final class Prompts {
    static final String DEFAULT_RESOURCE = "prompts.txt";

    private Prompts() {
    }

    /** The prompts that ship with sdrt. */
    public static List<String> defaults() {
        try (InputStream in = Prompts.class.getResourceAsStream(DEFAULT_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the default prompt list " + DEFAULT_RESOURCE + " is missing from the classpath");
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), "the default prompt list");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Reads a prompt file.
     *
     * @throws NoSuchFileException when it does not exist
     * @throws IllegalArgumentException when it holds no prompt
     */
    public static List<String> read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "prompt file not found");
        }
        return parse(Files.readString(file, StandardCharsets.UTF_8), file.toString());
    }

    static List<String> parse(String text, String source) {
        List<String> prompts = new ArrayList<>();
        for (String line : text.split("\\R")) {
            String p = line.strip();
            if (!p.isEmpty() && !p.startsWith("#")) {
                prompts.add(p);
            }
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException(source + " holds no prompt (one prompt per line; '#' starts a comment)");
        }
        return List.copyOf(prompts);
    }
}
