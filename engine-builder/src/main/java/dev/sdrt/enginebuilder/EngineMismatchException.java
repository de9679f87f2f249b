package dev.sdrt.enginebuilder;

/**
 * An engine was built for another GPU or another TensorRT version than this machine has. TensorRT
 * would at best refuse it and at worst misbehave, so sdrt refuses it first, naming both sides.
 */
public final class EngineMismatchException extends RuntimeException {

    private final BuildEnvironment builtFor;
    private final BuildEnvironment here;

    public EngineMismatchException(String message, BuildEnvironment builtFor, BuildEnvironment here) {
        super(message);
        this.builtFor = builtFor;
        this.here = here;
    }

    public BuildEnvironment builtFor() {
        return builtFor;
    }

    public BuildEnvironment here() {
        return here;
    }
}
