package dev.sdrt.graphs.pattern;

import java.util.Set;

/** Entry points for writing patterns. */
public final class Patterns {
    private Patterns() {
    }

    /** A node whose op type (default ONNX domain) is one of {@code opTypes}. */
    public static NodePattern op(String... opTypes) {
        return new NodePattern(Set.of(opTypes));
    }

    /** Any value. */
    public static ValuePattern any() {
        return new ValuePattern(null, false);
    }

    /** An initializer. */
    public static ValuePattern constant() {
        return new ValuePattern(null, true);
    }

    /** The output of a node matching {@code producer}. */
    public static ValuePattern producedBy(NodePattern producer) {
        return new ValuePattern(producer, false);
    }
}
