package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/** LRU cache of text-encoder outputs: a repeated prompt (or the empty negative prompt) skips the encoder. */
final class PromptCache {
    private final Map<String, Tensor> entries;
    private int hits;

    PromptCache(int capacity) {
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Tensor> eldest) {
                return size() > capacity;
            }
        };
    }

    synchronized Tensor get(String prompt, Function<String, Tensor> encode) {
        Tensor cached = entries.get(prompt);
        if (cached != null) {
            hits++;
            return cached;
        }
        Tensor t = encode.apply(prompt);
        entries.put(prompt, t);
        return t;
    }

    synchronized int hits() {
        return hits;
    }
}
