package dev.sdrt.exporter;

/** What the exporter's fuzzers ask of a loader's error message. */
public final class LoaderMessages {

    /** The project's limit on an error message. */
    public static final int MAX_CHARS = 1_000;

    private LoaderMessages() {}

    /** Null when {@code message} is a fit error message (non-empty, under the limit); else what is wrong with it. */
    public static String problem(String message) {
        if (message == null || message.isEmpty()) {
            return "empty message";
        }
        return message.length() >= MAX_CHARS
                ? "message of " + message.length() + " characters: " + message.substring(0, 300)
                : null;
    }
}
