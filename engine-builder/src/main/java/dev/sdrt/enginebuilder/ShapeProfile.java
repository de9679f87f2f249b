package dev.sdrt.enginebuilder;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One TensorRT optimization profile: min/opt/max shapes for every engine input, in the model's input
 * order, plus notes about requested sizes that did not apply (dimensions the graph fixes).
 */
public record ShapeProfile(Map<String, InputShapes> inputs, List<String> notes) {

    public ShapeProfile {
        inputs = Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
        notes = List.copyOf(notes);
    }

    /** True when every input has one shape: the engine is static. */
    public boolean isStatic() {
        return inputs.values().stream().allMatch(InputShapes::isStatic);
    }

    public InputShapes input(String name) {
        InputShapes shapes = inputs.get(name);
        if (shapes == null) {
            throw new IllegalArgumentException("the profile has no input '" + name + "'; it has " + inputs.keySet());
        }
        return shapes;
    }
}
