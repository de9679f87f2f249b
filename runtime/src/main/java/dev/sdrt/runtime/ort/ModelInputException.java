package dev.sdrt.runtime.ort;

import dev.sdrt.runtime.tensor.TensorSpec;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;

/**
 * Inputs that do not fit the model: missing, unknown, or of the wrong dtype, rank or size. Thrown
 * before the model runs, with every problem and the model's full input list in one message, e.g.
 *
 * <pre>
 * inputs do not fit model /models/unet.onnx:
 *   - missing input 'timestep'
 *   - input 'sample' is float16 [2, 4, 16, 16], the model expects float32 [batch, 4, 16, 16]
 * the model expects:
 *   sample: float32 [batch, 4, 16, 16]
 *   timestep: float32 [batch]
 * </pre>
 */
public final class ModelInputException extends IllegalArgumentException {

    private final List<String> problems;

    public ModelInputException(Path model, List<String> problems, Collection<TensorSpec> expectedInputs) {
        super(message(model, problems, expectedInputs));
        this.problems = List.copyOf(problems);
    }

    /** One line per problem, as in the message. */
    public List<String> problems() {
        return problems;
    }

    private static String message(Path model, List<String> problems, Collection<TensorSpec> expectedInputs) {
        StringBuilder text = new StringBuilder("inputs do not fit model ").append(model).append(':');
        for (String problem : problems) {
            text.append("\n  - ").append(problem);
        }
        text.append("\nthe model expects:");
        for (TensorSpec input : expectedInputs) {
            text.append("\n  ").append(input);
        }
        return text.toString();
    }
}
