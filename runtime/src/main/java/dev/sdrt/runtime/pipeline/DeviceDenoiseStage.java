package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.loop.CpuLoopDevice;
import dev.sdrt.runtime.loop.DenoisingLoop;
import dev.sdrt.runtime.loop.LoopDevice;
import dev.sdrt.runtime.loop.LoopModel;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The denoising loop queued on a {@link LoopDevice} by {@link DenoisingLoop}: one upload, every step
 * and the decode without waiting, one read-back. Progress is reported when the batch is back (the
 * host does not know how far the device is without waiting for it), and cancellation takes effect
 * before the batch is queued.
 */
final class DeviceDenoiseStage implements DenoiseStage {
    private final LoopDevice device;
    private final List<LoopModel> loaded;
    private final LoopModel denoiser;
    private final DenoisingLoop guidedLoop;
    private final DenoisingLoop plainLoop;
    private final boolean featureCache;
    private final PipelineSpec spec;
    private final boolean replay;

    private DeviceDenoiseStage(LoopDevice device, List<LoopModel> loaded, PipelineSpec spec, boolean replay) {
        this.device = device;
        this.loaded = loaded;
        this.spec = spec;
        this.replay = replay;
        PipelineFamily family = spec.family();
        this.denoiser = loaded.get(0);
        LoopModel vae = loaded.get(1);
        LoopModel plainStep = loaded.get(2);
        LoopModel guidedStep = loaded.get(3);
        LoopModel full = loaded.size() > 4 ? loaded.get(4) : null;
        LoopModel shallow = loaded.size() > 5 ? loaded.get(5) : null;
        this.featureCache = full != null;
        this.guidedLoop = new DenoisingLoop(device, new DenoisingLoop.Models(denoiser, family.sampleInput(), family.output(),
                guidedStep, vae, full, shallow), replay);
        this.plainLoop = new DenoisingLoop(device, new DenoisingLoop.Models(denoiser, family.sampleInput(), family.output(),
                plainStep, vae, full, shallow), replay);
    }

    /** Loads the folder's denoiser, VAE decoder, scheduler-step graphs and DeepCache graphs on {@code device}. */
    static DeviceDenoiseStage open(Path folder, PipelineSpec spec, LoopDevice device, boolean replay, LoadListener listener)
            throws IOException {
        if (spec.schedulerStep == null || spec.schedulerStepGuided == null) {
            throw new IllegalArgumentException(folder + " has no scheduler-step graphs, which the device loop runs;"
                    + " re-export it with 'sdrt export-pipeline'");
        }
        // by component, in the order the stage's constructor takes them
        Map<String, String> files = new LinkedHashMap<>();
        files.put(spec.denoiserKey(), spec.denoiser());
        files.put("vae_decoder", spec.vaeDecoder);
        files.put("scheduler_step", spec.schedulerStep);
        files.put("scheduler_step_guided", spec.schedulerStepGuided);
        if (spec.deepCacheFull != null && spec.deepCacheShallow != null) {
            files.put("deepcache_full", spec.deepCacheFull);
            files.put("deepcache_shallow", spec.deepCacheShallow);
        }
        List<LoopModel> loaded = new ArrayList<>();
        try {
            for (Map.Entry<String, String> f : files.entrySet()) {
                Path file = folder.resolve(f.getValue());
                loaded.add(PipelineParts.opening(listener, f.getKey(), file, () -> device.load(file)));
            }
            return new DeviceDenoiseStage(device, loaded, spec, replay);
        } catch (IOException | RuntimeException e) {
            loaded.forEach(LoopModel::close);
            throw e;
        }
    }

    @Override
    public Map<String, TensorSpec> denoiserInputs() {
        return denoiser.inputs();
    }

    @Override
    public String denoiserName() {
        return denoiser.name();
    }

    @Override
    public boolean hasFeatureCache() {
        return featureCache;
    }

    @Override
    public boolean onHost() {
        // the CPU loop device runs the same ONNX Runtime sessions as the host loop
        return device instanceof CpuLoopDevice;
    }

    @Override
    public String backend() {
        return "device loop on " + device + (replay ? ", replayed" : "");
    }

    @Override
    public Output run(Input in) {
        SchedulePlan plan = in.plan();
        int steps = plan.size();
        in.progress().beforeStep(0, steps);
        float[] noise = null;
        if (plan.usesNoise()) {
            int perBatch = in.latents().length;
            noise = new float[steps * perBatch];
            for (int i = 0; i < steps; i++) {
                System.arraycopy(in.stepNoise().next(), 0, noise, i * perBatch, perBatch);
            }
        }
        boolean[] fullSteps = null;
        if (in.cache() != null) {
            fullSteps = new boolean[steps];
            for (int i = 0; i < steps; i++) {
                fullSteps[i] = in.cache().isFull(i);
            }
        }
        DenoisingLoop loop = in.guided() ? guidedLoop : plainLoop;
        DenoisingLoop.Result r = loop.run(new DenoisingLoop.Request(plan, in.guidanceScale(), in.latentShape(), in.imageShape(),
                in.latents(), in.textFeeds(), noise, fullSteps, spec.vaeScalingFactor, spec.vaeShiftFactor));
        in.progress().afterStep(steps, steps);
        // The device does denoising and decoding back to back; the host sees one span, reported as the loop's.
        return new Output(r.image().toFloatArray(), r.latents().toFloatArray(), r.uploadMs() + r.enqueueMs() + r.waitMs(), 0,
                r.synchronizations(), r.uploadMs(), r.enqueueMs(), r.waitMs());
    }

    @Override
    public void close() {
        guidedLoop.close();
        plainLoop.close();
        loaded.forEach(LoopModel::close);
    }
}
