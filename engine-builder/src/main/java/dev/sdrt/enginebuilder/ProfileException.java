package dev.sdrt.enginebuilder;

/** An optimization profile cannot be derived: some dynamic dimension has no size. */
public final class ProfileException extends IllegalArgumentException {
    public ProfileException(String message) {
        super(message);
    }
}
