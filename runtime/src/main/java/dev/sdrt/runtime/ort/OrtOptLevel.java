package dev.sdrt.runtime.ort;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;

/** How much ONNX Runtime rewrites the graph when it loads a model (constant folding, fusions). */
public enum OrtOptLevel {
    /** No rewriting: runs the graph exactly as written, e.g. to check a pass's output. */
    NONE(OptLevel.NO_OPT),
    /** Semantics-preserving rewrites such as constant folding and redundant node removal. */
    BASIC(OptLevel.BASIC_OPT),
    /** BASIC plus fusions into ONNX Runtime's own operators (attention, GELU, layer norm). */
    EXTENDED(OptLevel.EXTENDED_OPT),
    /** EXTENDED plus memory layout changes; ONNX Runtime's default and the fastest. */
    ALL(OptLevel.ALL_OPT);

    private final OptLevel ortLevel;

    OrtOptLevel(OptLevel ortLevel) {
        this.ortLevel = ortLevel;
    }

    OptLevel ortLevel() {
        return ortLevel;
    }
}
