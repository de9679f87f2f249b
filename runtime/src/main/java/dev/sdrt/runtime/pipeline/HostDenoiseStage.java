package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.PlanStep;
import dev.sdrt.runtime.scheduler.SchedulePlan;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The denoising loop on the host: each step feeds the denoiser through ONNX Runtime (or a
 * substituted {@link Denoiser}), combines guidance and applies the scheduler's step in Java, then
 * the VAE decoder runs. Per-step progress and cancellation come for free here.
 */
final class HostDenoiseStage implements DenoiseStage {
    private final PipelineSpec spec;
    private final PipelineFamily family;
    private final Denoiser denoiser;
    private final OrtRunner vaeDecoder;
    private final OrtRunner deepCacheFull;
    private final OrtRunner deepCacheShallow;

    /** @param deepCacheFull null (and so {@code deepCacheShallow}) without DeepCache graphs */
    HostDenoiseStage(PipelineSpec spec, Denoiser denoiser, OrtRunner vaeDecoder, OrtRunner deepCacheFull,
            OrtRunner deepCacheShallow) {
        this.spec = spec;
        this.family = spec.family();
        this.denoiser = denoiser;
        this.vaeDecoder = vaeDecoder;
        this.deepCacheFull = deepCacheFull;
        this.deepCacheShallow = deepCacheShallow;
    }

    /**
     * Opens the folder's denoiser (from {@code denoiserOpener}, given the UNet or transformer file;
     * null for a plain ONNX Runtime session), VAE decoder and DeepCache graphs on ONNX Runtime.
     */
    static HostDenoiseStage open(Path folder, PipelineSpec spec, int threads, Denoiser.Opener denoiserOpener,
            LoadListener listener) throws IOException {
        boolean deepCache = spec.deepCacheFull != null && spec.deepCacheShallow != null;
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            Path denoiserFile = folder.resolve(spec.denoiser());
            Denoiser denoiser = PipelineParts.opening(listener, spec.denoiserKey(), denoiserFile, () -> denoiserOpener != null
                    ? denoiserOpener.open(denoiserFile) : Denoiser.of(PipelineParts.ort(denoiserFile, threads)));
            opened.add(denoiser);
            OrtRunner vae = PipelineParts.ort("vae_decoder", folder.resolve(spec.vaeDecoder), threads, listener);
            opened.add(vae);
            OrtRunner full = deepCache
                    ? PipelineParts.ort("deepcache_full", folder.resolve(spec.deepCacheFull), threads, listener) : null;
            opened.add(full);
            OrtRunner shallow = deepCache
                    ? PipelineParts.ort("deepcache_shallow", folder.resolve(spec.deepCacheShallow), threads, listener) : null;
            return new HostDenoiseStage(spec, denoiser, vae, full, shallow);
        } catch (IOException | RuntimeException e) {
            PipelineParts.closeAll(opened);
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
        return deepCacheFull != null;
    }

    @Override
    public boolean onHost() {
        return true;
    }

    @Override
    public String backend() {
        return "ONNX Runtime CPU";
    }

    @Override
    public Output run(Input in) {
        SchedulePlan plan = in.plan();
        long[] latentShape = in.latentShape();
        int perBatch = in.latents().length;
        int copies = in.guided() ? 2 : 1;
        long[] inputShape = latentShape.clone();
        inputShape[0] *= copies;
        float[] latents = in.latents().clone();
        float[] previousDenoised = new float[perBatch];
        FeatureCacheDenoiser cache = in.cache() == null ? null
                : new FeatureCacheDenoiser(deepCacheFull::run, deepCacheShallow::run, in.cache());

        long loopStart = System.nanoTime();
        for (int step = 0; step < plan.size(); step++) {
            in.progress().beforeStep(step, plan.size());
            PlanStep ps = plan.step(step);
            float[] modelInput = new float[perBatch * copies];
            for (int c = 0; c < copies; c++) {
                for (int i = 0; i < perBatch; i++) {
                    modelInput[c * perBatch + i] = (float) (latents[i] * ps.inputScale());
                }
            }
            float[] timesteps = new float[(int) inputShape[0]];
            Arrays.fill(timesteps, (float) ps.timestep());
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            feeds.put(family.sampleInput(), TensorSpec.castToInput(denoiser.inputs(), denoiser.name(), family.sampleInput(),
                    Tensor.ofFloats(inputShape, modelInput)));
            feeds.put("timestep", TensorSpec.castToInput(denoiser.inputs(), denoiser.name(), "timestep",
                    Tensor.ofFloats(new long[] {timesteps.length}, timesteps)));
            feeds.putAll(in.textFeeds());
            Map<String, Tensor> outputs = cache != null ? cache.step(step, feeds) : denoiser.run(feeds);
            float[] out = outputs.get(family.output()).toFloatArray();
            float[] guidedOut = in.guided() ? ClassifierFreeGuidance.combine(out, perBatch, in.guidanceScale()) : out;
            float[] noise = plan.usesNoise() ? in.stepNoise().next() : null;
            plan.applyStep(step, latents, guidedOut, previousDenoised, noise);
            in.progress().afterStep(step + 1, plan.size());
        }
        double loopMs = (System.nanoTime() - loopStart) / 1e6;

        long vaeStart = System.nanoTime();
        float[] scaled = new float[perBatch];
        for (int i = 0; i < perBatch; i++) {
            scaled[i] = (float) (latents[i] / spec.vaeScalingFactor + spec.vaeShiftFactor);
        }
        Tensor feed = TensorSpec.castToInput(vaeDecoder.inputs(), vaeDecoder.model().toString(), "latent_sample",
                Tensor.ofFloats(latentShape, scaled));
        Tensor image = vaeDecoder.run(Map.of("latent_sample", feed)).get("sample");
        double vaeMs = (System.nanoTime() - vaeStart) / 1e6;
        long[] expected = in.imageShape();
        if (!Arrays.equals(image.shape(), expected)) {
            throw new IllegalStateException("VAE decoder returned " + Tensor.formatShape(image.shape()) + ", expected "
                    + Tensor.formatShape(expected) + "; is vae_scale_factor in " + PipelineSpec.FILE_NAME + " right?");
        }
        return new Output(image.toFloatArray(), latents, loopMs, vaeMs, 0);
    }

    @Override
    public void close() {
        denoiser.close();
        vaeDecoder.close();
        if (deepCacheFull != null) {
            deepCacheFull.close();
            deepCacheShallow.close();
        }
    }
}
