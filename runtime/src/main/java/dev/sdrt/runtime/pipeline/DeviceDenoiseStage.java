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
    private final Models models;
    private final DenoisingLoop guidedLoop;
    private final DenoisingLoop plainLoop;
    private final PipelineSpec spec;
    private final boolean replay;

    /**
     * The models a folder loads on the device.
     *
     * @param plainStep the scheduler-step graph without guidance; {@code guidedStep} combines guidance too
     * @param deepCacheFull null (and so {@code deepCacheShallow}) without DeepCache graphs
     */
    private record Models(LoopModel denoiser, LoopModel vaeDecoder, LoopModel plainStep, LoopModel guidedStep,
            LoopModel deepCacheFull, LoopModel deepCacheShallow) {
        void close() {
            for (LoopModel m : new LoopModel[] {denoiser, vaeDecoder, plainStep, guidedStep, deepCacheFull, deepCacheShallow}) {
                if (m != null) {
                    m.close();
                }
            }
        }
    }

    private DeviceDenoiseStage(LoopDevice device, Models models, PipelineSpec spec, boolean replay) {
        this.device = device;
        this.models = models;
        this.spec = spec;
        this.replay = replay;
        PipelineFamily family = spec.family();
        this.guidedLoop = new DenoisingLoop(device, new DenoisingLoop.Models(models.denoiser(), family.sampleInput(),
                family.output(), models.guidedStep(), models.vaeDecoder(), models.deepCacheFull(), models.deepCacheShallow()),
                replay);
        this.plainLoop = new DenoisingLoop(device, new DenoisingLoop.Models(models.denoiser(), family.sampleInput(),
                family.output(), models.plainStep(), models.vaeDecoder(), models.deepCacheFull(), models.deepCacheShallow()),
                replay);
    }

    /** Loads the folder's denoiser, VAE decoder, scheduler-step graphs and DeepCache graphs on {@code device}. */
    static DeviceDenoiseStage open(Path folder, PipelineSpec spec, LoopDevice device, boolean replay, LoadListener listener)
            throws IOException {
        if (spec.schedulerStep == null || spec.schedulerStepGuided == null) {
            throw new IllegalArgumentException(folder + " has no scheduler-step graphs, which the device loop runs;"
                    + " re-export it with 'sdrt export-pipeline'");
        }
        boolean deepCache = spec.deepCacheFull != null && spec.deepCacheShallow != null;
        List<LoopModel> opened = new ArrayList<>();
        try {
            LoopModel denoiser = load(folder, device, listener, spec.denoiserKey(), spec.denoiser(), opened);
            LoopModel vae = load(folder, device, listener, "vae_decoder", spec.vaeDecoder, opened);
            LoopModel plainStep = load(folder, device, listener, "scheduler_step", spec.schedulerStep, opened);
            LoopModel guidedStep = load(folder, device, listener, "scheduler_step_guided", spec.schedulerStepGuided, opened);
            LoopModel full = deepCache ? load(folder, device, listener, "deepcache_full", spec.deepCacheFull, opened) : null;
            LoopModel shallow = deepCache
                    ? load(folder, device, listener, "deepcache_shallow", spec.deepCacheShallow, opened) : null;
            return new DeviceDenoiseStage(device, new Models(denoiser, vae, plainStep, guidedStep, full, shallow), spec,
                    replay);
        } catch (IOException | RuntimeException e) {
            opened.forEach(LoopModel::close);
            throw e;
        }
    }

    /** Loads one of the folder's models on the device, noting it in {@code opened} for closing should a later one fail. */
    private static LoopModel load(Path folder, LoopDevice device, LoadListener listener, String component, String fileName,
            List<LoopModel> opened) throws IOException {
        Path file = folder.resolve(fileName);
        LoopModel model = PipelineParts.opening(listener, component, file, () -> device.load(file));
        opened.add(model);
        return model;
    }

    @Override
    public Map<String, TensorSpec> denoiserInputs() {
        return models.denoiser().inputs();
    }

    @Override
    public String denoiserName() {
        return models.denoiser().name();
    }

    @Override
    public boolean hasFeatureCache() {
        return models.deepCacheFull() != null;
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
        models.close();
    }
}
