package dev.sdrt.runtime.loop;

import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.tensor.DType;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.logging.Logger;

/**
 * The whole denoising loop and the VAE decode of one batch on a {@link LoopDevice}, with one upload
 * and one synchronization per request:
 *
 * <ol>
 *   <li>one upload: the timestep and coefficient tables of every step (host-made, see
 *       {@link SchedulePlan#coefficientTable(double, double, double)}), the initial latents and
 *       model input, the text inputs, and the fresh noise of every step for ancestral samplers;</li>
 *   <li>per step, two launches on the device's stream: the denoiser (UNet or transformer; DeepCache's
 *       full or shallow graph as the host-made schedule says, the cached feature staying on the
 *       device), then the scheduler-step graph, which applies guidance and the scheduler update and
 *       writes the next model input; each binds its step's row of the tables, and latents ping-pong
 *       between two buffers;</li>
 *   <li>the last step's row turns the final latents into the VAE's input (x / scaling + shift), the
 *       VAE decoder runs, and one download of the image and the latents waits for it all.</li>
 * </ol>
 *
 * With CUDA-graph replay on, the launches of a (shape, steps, cache schedule) are captured once and
 * replayed for every later request of that shape; only the upload's contents change. A shape whose
 * capture the device refuses ({@link LoopDevice.CaptureFailedException}) runs eagerly, then and on
 * every later request, without another try. The buffers and replays of the four most recently used
 * shapes are kept. Not thread-safe: one loop per device and thread.
 */
public final class DenoisingLoop implements AutoCloseable {

    /**
     * The models of a pipeline on one device.
     *
     * @param sampleInput the denoiser's latent input ({@code sample} for UNets, {@code hidden_states} for SD3)
     * @param output the denoiser's prediction output
     * @param step the scheduler-step graph, guided (its model input is [uncond; cond]) or not, as requests will be
     * @param deepCacheFull null unless the pipeline has DeepCache graphs
     */
    public record Models(LoopModel denoiser, String sampleInput, String output, LoopModel step, LoopModel vaeDecoder,
            LoopModel deepCacheFull, LoopModel deepCacheShallow) {
        public Models {
            Objects.requireNonNull(denoiser, "denoiser");
            Objects.requireNonNull(step, "step");
            Objects.requireNonNull(vaeDecoder, "vaeDecoder");
        }
    }

    /**
     * One batch.
     *
     * @param latentShape [images, channels, height, width] of the latents
     * @param imageShape [images, 3, height, width] of the decoded image
     * @param initialLatents the starting sample (noise scaled for the plan, or a noised image)
     * @param textFeeds the denoiser's text inputs for the whole guided batch, in its declared types
     * @param stepNoise fresh noise of every step, [steps × latents] (ancestral samplers), else null
     * @param fullSteps DeepCache: per step, whether the full UNet runs; null without the cache
     */
    public record Request(SchedulePlan plan, double guidanceScale, long[] latentShape, long[] imageShape,
            float[] initialLatents, Map<String, Tensor> textFeeds, float[] stepNoise, boolean[] fullSteps,
            double vaeScalingFactor, double vaeShiftFactor) {
        boolean guided() {
            return guidanceScale > 1;
        }
    }

    /**
     * What came back, and where the host's time went: {@code enqueueMs} is the time to queue every
     * launch (or the replay), {@code waitMs} the wait for the device plus the read-back.
     */
    public record Result(Tensor image, Tensor latents, double uploadMs, double enqueueMs, double waitMs,
            long synchronizations, boolean replayed) {
    }

    private static final Logger LOG = Logger.getLogger(DenoisingLoop.class.getName());

    private static final String FEATURE = "deepcache_feature";

    /**
     * Few shapes are live at once in practice; past this many, the least recently used one goes, its
     * replay and device memory freed (a service that sees many sizes does not grow without bound).
     */
    private static final int MAX_WORKSPACES = 4;

    private final LoopDevice device;
    private final Models models;
    private final boolean replay;
    /** In access order: the first entry is the least recently used shape. */
    private final Map<String, Workspace> workspaces = new LinkedHashMap<>(16, 0.75f, true);
    /**
     * Keys of the shapes whose capture failed. Kept apart from their workspaces, so that a shape
     * evicted and seen again is not captured again: what made the capture fail (an engine's kernels,
     * the driver) has not changed.
     */
    private final Set<String> uncapturable = new HashSet<>();

    /** @param replay capture each shape's launches once and replay them (CUDA graphs on GPUs) */
    public DenoisingLoop(LoopDevice device, Models models, boolean replay) {
        this.device = device;
        this.models = models;
        this.replay = replay;
        requireFloat(models.denoiser(), models.sampleInput(), true);
        requireFloat(models.denoiser(), "timestep", true);
        requireFloat(models.denoiser(), models.output(), false);
    }

    private static void requireFloat(LoopModel model, String name, boolean input) {
        TensorSpec spec = (input ? model.inputs() : model.outputs()).get(name);
        if (spec == null) {
            throw new IllegalArgumentException(model.name() + " has no " + (input ? "input" : "output") + " '" + name + "'");
        }
        if (spec.dtype() != DType.FLOAT32) {
            throw new IllegalArgumentException(model.name() + ": the device loop needs float32 at '" + name + "', not "
                    + spec.dtype().displayName() + " (keep the graph's inputs and outputs in float32; the fp16 pass does by default)");
        }
    }

    /** The buffers of one shape, and its captured launches once there are some. */
    private static final class Workspace {
        DeviceTensor timesteps;
        DeviceTensor coefficients;
        DeviceTensor noise;
        final DeviceTensor[] latents = new DeviceTensor[2];
        final DeviceTensor[] previous = new DeviceTensor[2];
        final DeviceTensor[] modelInput = new DeviceTensor[2];
        DeviceTensor modelOutput;
        DeviceTensor feature;
        DeviceTensor image;
        final Map<String, DeviceTensor> text = new LinkedHashMap<>();
        LoopDevice.Replay captured;

        /** Frees the captured launches, then every tensor (after the launches, which read them). */
        void close(LoopDevice device) {
            if (captured != null) {
                captured.close();
            }
            List<DeviceTensor> tensors = new ArrayList<>(List.of(timesteps, coefficients, noise, modelOutput, image));
            tensors.addAll(List.of(latents));
            tensors.addAll(List.of(previous));
            tensors.addAll(List.of(modelInput));
            tensors.addAll(text.values());
            if (feature != null) {
                tensors.add(feature);
            }
            tensors.forEach(device::free);
        }
    }

    public Result run(Request r) {
        SchedulePlan plan = r.plan();
        int steps = plan.size();
        int copies = r.guided() ? 2 : 1;
        long[] latentShape = r.latentShape();
        long images = latentShape[0];
        int perBatch = Math.toIntExact(Tensor.numElements(latentShape));
        long[] inputShape = latentShape.clone();
        inputShape[0] = images * copies;
        if (r.initialLatents().length != perBatch) {
            throw new IllegalArgumentException("initial latents have " + r.initialLatents().length + " values, "
                    + Tensor.formatShape(latentShape) + " needs " + perBatch);
        }
        if (r.stepNoise() != null && r.stepNoise().length != (long) steps * perBatch) {
            throw new IllegalArgumentException("step noise must hold " + steps + " × " + perBatch + " values");
        }
        if (r.fullSteps() != null && (r.fullSteps().length != steps || models.deepCacheFull() == null)) {
            throw new IllegalArgumentException(models.deepCacheFull() == null ? "no DeepCache graphs were loaded"
                    : "the DeepCache schedule has " + r.fullSteps().length + " steps, the plan " + steps);
        }
        String key = workspaceKey(r, steps);
        Workspace w = workspace(key, r, steps, inputShape);

        // 1. One upload: per-step tables, the starting state, the text inputs and the noise.
        long uploadStart = System.nanoTime();
        float[] timesteps = new float[Math.toIntExact(steps * inputShape[0])];
        for (int i = 0; i < steps; i++) {
            Arrays.fill(timesteps, Math.toIntExact(i * inputShape[0]), Math.toIntExact((i + 1) * inputShape[0]),
                    (float) plan.step(i).timestep());
        }
        float[] input = new float[Math.toIntExact(perBatch * (long) copies)];
        double scale = plan.step(0).inputScale();
        for (int c = 0; c < copies; c++) {
            for (int i = 0; i < perBatch; i++) {
                input[c * perBatch + i] = (float) (r.initialLatents()[i] * scale);
            }
        }
        List<DeviceTensor> targets = new ArrayList<>(List.of(w.timesteps, w.coefficients, w.latents[0], w.previous[0],
                w.modelInput[0]));
        List<Tensor> sources = new ArrayList<>(List.of(
                Tensor.ofFloats(w.timesteps.shape(), timesteps),
                Tensor.ofFloats(w.coefficients.shape(), plan.coefficientTable(r.guidanceScale(), 1 / r.vaeScalingFactor(),
                        r.vaeShiftFactor())),
                Tensor.ofFloats(latentShape, r.initialLatents()),
                Tensor.ofFloats(latentShape, new float[perBatch]),
                Tensor.ofFloats(inputShape, input)));
        w.text.forEach((name, target) -> {
            targets.add(target);
            sources.add(r.textFeeds().get(name));
        });
        if (r.stepNoise() != null) {
            targets.add(w.noise);
            sources.add(Tensor.ofFloats(w.noise.shape(), r.stepNoise()));
        }
        device.upload(targets, sources);
        double uploadMs = (System.nanoTime() - uploadStart) / 1e6;

        // 2. and 3. Every step and the decode, queued (or replayed) without waiting.
        long enqueueStart = System.nanoTime();
        boolean replayed = w.captured != null;
        if (replay && w.captured == null && !uncapturable.contains(key)) {
            try {
                w.captured = device.capture(() -> enqueue(w, r, steps));
            } catch (LoopDevice.CaptureFailedException e) {
                uncapturable.add(key);
                LOG.warning("could not capture the loop of " + Tensor.formatShape(r.latentShape()) + " latents in " + steps
                        + (steps == 1 ? " step" : " steps") + " on " + device + " (" + e.getMessage() + "); that shape"
                        + " runs without replay from now on: the same results, with more host time spent launching");
            }
        }
        if (w.captured != null) {
            w.captured.launch();
        } else {
            enqueue(w, r, steps);
        }
        double enqueueMs = (System.nanoTime() - enqueueStart) / 1e6;

        long waitStart = System.nanoTime();
        long syncsBefore = device.synchronizations();
        List<Tensor> back = device.download(w.image, w.latents[steps % 2]);
        double waitMs = (System.nanoTime() - waitStart) / 1e6;
        return new Result(back.get(0), back.get(1), uploadMs, enqueueMs, waitMs, device.synchronizations() - syncsBefore,
                replayed);
    }

    /** Queues every step and the decode. Buffers alternate: step i reads set i % 2 and writes the other. */
    private void enqueue(Workspace w, Request r, int steps) {
        long batch = w.modelInput[0].shape()[0];
        for (int i = 0; i < steps; i++) {
            int from = i % 2;
            int to = 1 - from;
            Map<String, DeviceTensor> in = new LinkedHashMap<>();
            in.put(models.sampleInput(), w.modelInput[from]);
            in.put("timestep", w.timesteps.row(i, batch));
            in.putAll(w.text);
            Map<String, DeviceTensor> out = new LinkedHashMap<>();
            out.put(models.output(), w.modelOutput);
            LoopModel denoiser = models.denoiser();
            if (r.fullSteps() != null) {
                if (r.fullSteps()[i]) {
                    denoiser = models.deepCacheFull();
                    out.put(FEATURE, w.feature);
                } else {
                    denoiser = models.deepCacheShallow();
                    in.put(FEATURE, w.feature);
                }
            }
            device.launch(denoiser, in, out);
            device.launch(models.step(), Map.of(
                    "sample", w.latents[from],
                    "model_output", w.modelOutput,
                    "previous_denoised", w.previous[from],
                    "noise", r.stepNoise() != null ? w.noise.row(i) : w.noise,
                    "coefficients", w.coefficients.row(i)), Map.of(
                    "next_sample", w.latents[to],
                    "denoised", w.previous[to],
                    "next_model_input", w.modelInput[to]));
        }
        // The last row made next_model_input the VAE's input; its first half is one copy per image.
        DeviceTensor vaeInput = w.modelInput[steps % 2].head(w.latents[0].shape()[0]);
        device.launch(models.vaeDecoder(), Map.of("latent_sample", vaeInput), Map.of("sample", w.image));
    }

    /** What a workspace, and its replay, serve: the shapes, steps and cache schedule of a request. */
    private static String workspaceKey(Request r, int steps) {
        StringBuilder key = new StringBuilder(Arrays.toString(r.latentShape())).append(steps).append(r.guided())
                .append(Arrays.toString(r.imageShape())).append(r.stepNoise() != null)
                .append(r.fullSteps() == null ? "" : Arrays.toString(r.fullSteps()));
        r.textFeeds().forEach((name, t) -> key.append(name).append(Arrays.toString(t.shape())).append(t.dtype()));
        return key.toString();
    }

    private Workspace workspace(String key, Request r, int steps, long[] inputShape) {
        Workspace existing = workspaces.get(key); // get() makes it the most recently used
        if (existing != null) {
            return existing;
        }
        // Make room first, so the new shape can reuse what the least recently used one frees.
        if (workspaces.size() >= MAX_WORKSPACES) {
            Iterator<Workspace> leastRecentlyUsed = workspaces.values().iterator();
            leastRecentlyUsed.next().close(device);
            leastRecentlyUsed.remove();
        }
        long[] latentShape = r.latentShape();
        Workspace w = new Workspace();
        w.timesteps = device.allocate("timesteps", DType.FLOAT32, steps, inputShape[0]);
        w.coefficients = device.allocate("coefficients", DType.FLOAT32, steps, SchedulePlan.COEFFICIENT_COLUMNS.size());
        for (int k = 0; k < 2; k++) {
            w.latents[k] = device.allocate("latents" + k, DType.FLOAT32, latentShape);
            w.previous[k] = device.allocate("denoised" + k, DType.FLOAT32, latentShape);
            w.modelInput[k] = device.allocate("model_input" + k, DType.FLOAT32, inputShape);
        }
        w.modelOutput = device.allocate("model_output", DType.FLOAT32, inputShape);
        w.image = device.allocate("image", DType.FLOAT32, r.imageShape());
        Map<String, Long> dims = new HashMap<>();
        models.denoiser().inputs().get(models.sampleInput()).bindDimensions(inputShape, dims);
        for (Map.Entry<String, Tensor> e : r.textFeeds().entrySet()) {
            TensorSpec spec = models.denoiser().inputs().get(e.getKey());
            if (spec == null) {
                throw new IllegalArgumentException(models.denoiser().name() + " has no input '" + e.getKey() + "'");
            }
            spec.bindDimensions(e.getValue().shape(), dims);
            w.text.put(e.getKey(), device.allocate(e.getKey(), e.getValue().dtype(), e.getValue().shape()));
        }
        if (r.stepNoise() != null) {
            long[] table = new long[latentShape.length + 1];
            table[0] = steps;
            System.arraycopy(latentShape, 0, table, 1, latentShape.length);
            w.noise = device.allocate("noise", DType.FLOAT32, table);
        } else {
            // Deterministic samplers multiply the noise input by 0; it still has to hold numbers, not NaN.
            w.noise = device.allocate("zero_noise", DType.FLOAT32, latentShape);
            device.upload(List.of(w.noise), List.of(Tensor.ofFloats(latentShape, new float[Math.toIntExact(
                    Tensor.numElements(latentShape))])));
        }
        if (r.fullSteps() != null) {
            TensorSpec feature = models.deepCacheFull().outputs().get(FEATURE);
            if (feature == null) {
                throw new IllegalArgumentException(models.deepCacheFull().name() + " has no output '" + FEATURE + "'");
            }
            w.feature = device.allocate(FEATURE, feature.dtype(), featureShape(feature, dims, r, inputShape));
        }
        workspaces.put(key, w);
        return w;
    }

    /**
     * The DeepCache feature's shape: its dynamic dimensions by name from the denoiser's input
     * dimensions or, when they have no names (TensorRT engines keep none), as the full graph infers
     * it for this request's input shapes.
     */
    private long[] featureShape(TensorSpec feature, Map<String, Long> dims, Request r, long[] inputShape) {
        try {
            return resolve(feature, dims);
        } catch (IllegalArgumentException unnamed) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put(models.sampleInput(), inputShape);
            shapes.put("timestep", new long[] {inputShape[0]});
            r.textFeeds().forEach((name, t) -> shapes.put(name, t.shape()));
            long[] inferred = models.deepCacheFull().outputShapes(shapes).map(m -> m.get(FEATURE)).orElse(null);
            if (inferred == null) {
                throw unnamed;
            }
            return inferred;
        }
    }

    /** The concrete shape of an output whose dynamic dimensions are named after input dimensions. */
    private static long[] resolve(TensorSpec spec, Map<String, Long> dims) {
        long[] shape = spec.shapeWith(dims);
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == TensorSpec.DYNAMIC) {
                throw new IllegalArgumentException("cannot size " + spec.name() + " dimension " + d + " ('"
                        + spec.dimensionName(d) + "'): no input dimension has that name");
            }
        }
        return shape;
    }

    @Override
    public void close() {
        workspaces.values().forEach(w -> w.close(device));
        workspaces.clear();
    }
}
