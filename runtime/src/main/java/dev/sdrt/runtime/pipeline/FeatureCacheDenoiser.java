package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.tensor.Tensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * DeepCache in the denoising loop: each step runs either the full UNet, which also returns the deep
 * feature and refreshes the cache, or the shallow UNet, which takes the cached feature as an extra
 * input, as the {@link FeatureCacheSchedule} made before the loop says.
 *
 * <p>The two graphs come from sdrt's DeepCache splitter (graphs module, {@code DeepCacheSplitter}):
 * the full graph's extra output and the shallow graph's extra input share one name, {@value
 * #DEFAULT_FEATURE}. Each is anything that maps named inputs to named outputs; {@code
 * OrtRunner::run} fits.
 *
 * <p>The cached feature is kept as the tensor the full graph returned, in host memory: this class
 * serves the host loop ({@link HostDenoiseStage}, ONNX Runtime on the CPU). The device loop does not
 * use it; {@link dev.sdrt.runtime.loop.DenoisingLoop} keeps the feature in a device buffer of its
 * own. It is dropped by {@link #reset()}, which a loop calls before each new image.
 *
 * <p>One instance serves one denoising loop at a time; it is not thread-safe.
 */
public final class FeatureCacheDenoiser {
    /** The name sdrt's splitter gives the cached feature (full's output, shallow's input). */
    public static final String DEFAULT_FEATURE = "deepcache_feature";

    /** A UNet graph: named inputs in, named outputs out ({@code OrtRunner::run} fits). */
    @FunctionalInterface
    public interface UnetGraph {
        Map<String, Tensor> run(Map<String, Tensor> inputs);
    }

    private final UnetGraph full;
    private final UnetGraph shallow;
    private final FeatureCacheSchedule schedule;
    private final String featureName;
    private Tensor cached;
    private int cachedStep = -1;
    private int fullRuns;
    private int shallowRuns;

    /** With the splitter's feature name, {@value #DEFAULT_FEATURE}. */
    public FeatureCacheDenoiser(UnetGraph full, UnetGraph shallow, FeatureCacheSchedule schedule) {
        this(full, shallow, schedule, DEFAULT_FEATURE);
    }

    public FeatureCacheDenoiser(UnetGraph full, UnetGraph shallow, FeatureCacheSchedule schedule, String featureName) {
        this.full = Objects.requireNonNull(full, "full");
        this.shallow = Objects.requireNonNull(shallow, "shallow");
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        this.featureName = Objects.requireNonNull(featureName, "featureName");
    }

    public FeatureCacheSchedule schedule() {
        return schedule;
    }

    /**
     * Runs step {@code step}'s UNet on {@code unetInputs} (sample, timestep, encoder_hidden_states
     * and the like, without the feature).
     *
     * @return the UNet's outputs ({@code out_sample}); the feature stays in the cache, not in the map
     * @throws IllegalStateException when a shallow step comes with no feature cached (no full step
     *     has run since construction or {@link #reset()}), or with a feature cached at a later step
     *     (a new loop started without {@link #reset()}); when the full graph returns no feature
     * @throws IllegalArgumentException when {@code step} is outside the schedule, or the inputs
     *     already hold the feature
     */
    public Map<String, Tensor> step(int step, Map<String, Tensor> unetInputs) {
        boolean isFull = schedule.isFull(step);
        if (unetInputs.containsKey(featureName)) {
            throw new IllegalArgumentException("the UNet inputs already hold '" + featureName
                    + "'; the denoiser supplies the cached feature itself");
        }
        if (isFull) {
            Map<String, Tensor> outputs = new LinkedHashMap<>(full.run(unetInputs));
            Tensor feature = outputs.remove(featureName);
            if (feature == null) {
                throw new IllegalStateException("the full UNet returned no '" + featureName + "' (its outputs: "
                        + outputs.keySet() + "); is it the full graph of a DeepCache split?");
            }
            cached = feature;
            cachedStep = step;
            fullRuns++;
            return Collections.unmodifiableMap(outputs);
        }
        if (cached == null) {
            throw new IllegalStateException("step " + step + " is a shallow step, but no full step has run"
                    + " since the cache was created or reset, so there is no cached feature to reuse (schedule "
                    + schedule.description() + ": " + schedule + ")");
        }
        if (step < cachedStep) {
            throw new IllegalStateException("step " + step + " is a shallow step, but the cached feature comes from"
                    + " step " + cachedStep + ", a later step: a new denoising loop must call reset() first");
        }
        Map<String, Tensor> feeds = new LinkedHashMap<>(unetInputs);
        feeds.put(featureName, cached);
        Map<String, Tensor> outputs = shallow.run(feeds);
        shallowRuns++;
        return outputs;
    }

    /** Drops the cached feature; the next step must be a full one. Call before each new denoising loop. */
    public void reset() {
        cached = null;
        cachedStep = -1;
    }

    /** The step whose full run produced the cached feature, or -1 when none is cached. */
    public int cachedStep() {
        return cachedStep;
    }

    /** Full and shallow UNet runs so far (not reset by {@link #reset()}). */
    public int fullRuns() {
        return fullRuns;
    }

    public int shallowRuns() {
        return shallowRuns;
    }
}
