package dev.sdrt.graphs.pattern;

import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/** Describes a value: anything, a constant, or the output of a node matching a {@link NodePattern}. */
public final class ValuePattern {
    private final NodePattern producer;
    private final boolean mustBeConstant;
    private String label;
    private final List<Predicate<Value>> conditions = new ArrayList<>();

    ValuePattern(NodePattern producer, boolean mustBeConstant) {
        this.producer = producer;
        this.mustBeConstant = mustBeConstant;
    }

    /** Binds the value to {@code label}; a label used twice must bind the same value both times. */
    public ValuePattern as(String label) {
        this.label = label;
        return this;
    }

    public ValuePattern where(Predicate<Value> condition) {
        conditions.add(condition);
        return this;
    }

    /** The value's known rank must be {@code rank}. */
    public ValuePattern rank(int rank) {
        return where(v -> v.shape() != null && v.shape().rank() == rank);
    }

    public ValuePattern shape(Predicate<Shape> condition) {
        return where(v -> v.shape() != null && condition.test(v.shape()));
    }

    /** The value must be read only by the node being matched (and not be a graph output). */
    public ValuePattern soleUse() {
        return where(v -> v.soleConsumer() != null && v.consumers().size() == 1);
    }

    boolean matches(Value v, Match m) {
        if (v == null) {
            return false;
        }
        if (mustBeConstant && !v.isConstant()) {
            return false;
        }
        for (Predicate<Value> c : conditions) {
            if (!c.test(v)) {
                return false;
            }
        }
        if (label != null && !m.bind(label, v)) {
            return false;
        }
        return producer == null || producer.matches(v.producer(), m);
    }
}
