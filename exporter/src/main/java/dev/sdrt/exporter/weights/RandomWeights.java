package dev.sdrt.exporter.weights;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.TensorData;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Seeded random parameters for any architecture, generated when the graph is saved so that a
 * multi-GB model never sits in memory. Each tensor's values depend only on the seed and its name.
 *
 * <p>Scales keep activations finite through deep stacks: weights are uniform with variance
 * 1/fanIn, norm gains near 1, biases and shifts small, embeddings of unit scale.
 */
public final class RandomWeights implements Weights {
    private final long seed;
    private final Map<String, Long> used = new LinkedHashMap<>();

    public RandomWeights(long seed) {
        this.seed = seed;
    }

    @Override
    public TensorData get(String name, long[] shape, DataType type, Init init) {
        TensorData header = TensorData.generated(type, shape, () -> null);
        long count = header.numElements();
        if (count > Integer.MAX_VALUE / 4) {
            throw new WeightsException("parameter '" + name + "' has " + count + " elements, more than one tensor can hold");
        }
        if (used.put(name, count) != null) {
            throw new IllegalStateException("parameter '" + name + "' requested twice");
        }
        long tensorSeed = seed ^ fnv1a(name);
        return TensorData.generated(type, shape, () -> TensorData.ofFloatsAs(type, shape, values((int) count, tensorSeed, init)).bytes());
    }

    static float[] values(int count, long tensorSeed, Init init) {
        SplittableRandom rnd = new SplittableRandom(tensorSeed);
        float[] v = new float[count];
        switch (init.kind()) {
            case WEIGHT -> {
                // uniform(-a, a) has variance a^2/3; a = sqrt(3/fanIn) gives variance 1/fanIn
                double a = Math.sqrt(3.0 / Math.max(1, init.fanIn()));
                for (int i = 0; i < count; i++) {
                    v[i] = (float) ((rnd.nextDouble() * 2 - 1) * a);
                }
            }
            case BIAS, NORM_BIAS -> {
                for (int i = 0; i < count; i++) {
                    v[i] = (float) ((rnd.nextDouble() * 2 - 1) * 0.05);
                }
            }
            case NORM_SCALE -> {
                for (int i = 0; i < count; i++) {
                    v[i] = (float) (1 + (rnd.nextDouble() * 2 - 1) * 0.1);
                }
            }
            case EMBEDDING -> {
                for (int i = 0; i < count; i++) {
                    v[i] = (float) ((rnd.nextDouble() * 2 - 1) * Math.sqrt(3.0));
                }
            }
        }
        return v;
    }

    private static long fnv1a(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    @Override
    public Map<String, Long> used() {
        return java.util.Collections.unmodifiableMap(used);
    }

    @Override
    public List<String> unused() {
        return List.of();
    }
}
