package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxModel;

/**
 * One graph rewrite: finds a structure, replaces it, and reports what it changed. A pass is
 * idempotent: applying it to its own output changes nothing ({@link PassResult#changes()} is 0).
 */
public interface GraphPass {

    /** The name used in pipeline specs ({@code cleanup}, {@code fuse-qkv}, {@code fp16}, ...). */
    String name();

    /** Rewrites {@code model} in place. */
    PassResult apply(OnnxModel model);
}
