package dev.sdrt.enginebuilder;

/** An engine's manifest is missing, unreadable or incomplete. */
public final class ManifestException extends RuntimeException {
    public ManifestException(String message, Throwable cause) {
        super(message, cause);
    }

    public ManifestException(String message) {
        super(message);
    }
}
