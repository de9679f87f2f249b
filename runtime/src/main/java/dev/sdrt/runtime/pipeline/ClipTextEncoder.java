package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.text.ClipTokenizer;
import java.util.LinkedHashMap;
import java.util.Map;

/** A CLIP text encoder with its tokenizer and a prompt cache; every output comes back as float32 [1, ...]. */
final class ClipTextEncoder implements AutoCloseable {
    private final ClipTokenizer tokenizer;
    private final OrtRunner runner;
    private final int maxLength;
    private final PromptCache<Map<String, Tensor>> cache = new PromptCache<>(64);

    ClipTextEncoder(ClipTokenizer tokenizer, OrtRunner runner, int maxLength) {
        this.tokenizer = tokenizer;
        this.runner = runner;
        this.maxLength = maxLength;
    }

    /** Output {@code name} of the encoder for {@code prompt}; a missing output names what the model has. */
    Tensor output(String prompt, String name) {
        Map<String, Tensor> outputs = cache.get(prompt, this::encode);
        Tensor t = outputs.get(name);
        if (t == null) {
            throw new IllegalStateException(runner.model() + " has no output '" + name + "' (outputs: " + outputs.keySet()
                    + "); re-export the pipeline with 'sdrt export-pipeline'");
        }
        return t;
    }

    private Map<String, Tensor> encode(String prompt) {
        long[] ids = tokenizer.encodeForModel(prompt, maxLength);
        Tensor input = Tensor.ofLongs(new long[] {1, ids.length}, ids);
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        Tensor feed = TensorSpec.castToInput(runner.inputs(), runner.model().toString(), "input_ids", input);
        runner.run(Map.of("input_ids", feed)).forEach((name, t) -> outputs.put(name, t.castTo(DType.FLOAT32)));
        return outputs;
    }

    PromptCache.Stats cacheStats() {
        return cache.stats();
    }

    @Override
    public void close() {
        runner.close();
    }
}
