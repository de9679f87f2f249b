package dev.sdrt.enginebuilder;

/**
 * The builder settings that change the engine TensorRT produces (part of the cache key). The timing
 * cache file is not among them: it only makes builds faster.
 */
public record BuildOptions(int optLevel, long workspaceBytes, boolean refit, boolean tf32, boolean staticShapes,
        boolean stronglyTyped) {

    public static BuildOptions of(EngineBuildRequest request) {
        return new BuildOptions(request.optLevel(), request.workspaceBytes(), request.refit(), request.tf32(),
                request.staticShapes(), true);
    }
}
