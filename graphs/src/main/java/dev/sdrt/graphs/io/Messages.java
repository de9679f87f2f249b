package dev.sdrt.graphs.io;

/**
 * Keeps error messages readable when the input is hostile: names, locations and native error
 * texts taken from a model can be megabytes long or hold line breaks, so what a message quotes is
 * escaped and cut, and a whole message has a length limit.
 */
public final class Messages {
    /** The longest message an error about a model carries. */
    public static final int MAX_LENGTH = 1000;
    /** How much of one quoted piece of input (a name, a location, a number) a message shows. */
    public static final int QUOTE_LENGTH = 100;

    private Messages() {
    }

    /** {@code text} in single quotes, as {@link #quote(String, int)} with {@link #QUOTE_LENGTH}. */
    public static String quote(String text) {
        return quote(text, QUOTE_LENGTH);
    }

    /**
     * {@code text} in single quotes with control characters escaped, cut after {@code max}
     * characters; a cut quote ends with "…" and says how long the whole text is.
     */
    public static String quote(String text, int max) {
        if (text == null) {
            return "(none)";
        }
        int end = cutPoint(text, max);
        StringBuilder sb = new StringBuilder(end + 32).append('\'');
        for (int i = 0; i < end; i++) {
            char c = text.charAt(i);
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20 || c == 0x7f) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('\'');
        if (end < text.length()) {
            sb.insert(sb.length() - 1, '…').append(" (").append(text.length()).append(" characters)");
        }
        return sb.toString();
    }

    /** {@code message} cut to at most {@code max} characters, ending in "…" when cut. */
    public static String cap(String message, int max) {
        if (message == null || message.length() <= max) {
            return message;
        }
        return message.substring(0, cutPoint(message, max - 1)) + "…";
    }

    /** {@code max} or one less, so a cut never splits a surrogate pair. */
    private static int cutPoint(String text, int max) {
        if (text.length() <= max) {
            return text.length();
        }
        return max > 0 && Character.isHighSurrogate(text.charAt(max - 1)) ? max - 1 : Math.max(max, 0);
    }
}
