package dev.sdrt.runtime.pipeline;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * LRU cache of text-encoder outputs: a repeated prompt (or the empty negative prompt) skips the
 * encoder. Bounded by entry count; one entry is a few hundred KB for SD-sized encoders.
 */
final class PromptCache<V> {
    private final Map<String, V> entries;
    private int hits;

    PromptCache(int capacity) {
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, V> eldest) {
                return size() > capacity;
            }
        };
    }

    synchronized V get(String prompt, Function<String, V> encode) {
        V cached = entries.get(prompt);
        if (cached != null) {
            hits++;
            return cached;
        }
        V value = encode.apply(prompt);
        entries.put(prompt, value);
        return value;
    }

    synchronized int hits() {
        return hits;
    }
}
