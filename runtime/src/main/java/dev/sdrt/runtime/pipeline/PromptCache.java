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
    private long hits;
    private long misses;

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
        misses++;
        V value = encode.apply(prompt);
        entries.put(prompt, value);
        return value;
    }

    synchronized Stats stats() {
        return new Stats(hits, misses);
    }

    /** Lookups served from the cache and lookups that ran the encoder. */
    record Stats(long hits, long misses) {
        Stats plus(Stats other) {
            return new Stats(hits + other.hits, misses + other.misses);
        }
    }
}
