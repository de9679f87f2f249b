package dev.sdrt.enginebuilder.pipeline;

import dev.sdrt.enginebuilder.DimRange;
import dev.sdrt.enginebuilder.EngineBuildRequest;
import dev.sdrt.runtime.loop.TrtLoopDevice;
import dev.sdrt.runtime.pipeline.PipelineSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which TensorRT engine each component of a pipeline folder gets, for the device loop
 * ({@code TrtLoopDevice}): an {@code X.plan} beside every {@code X.onnx} it runs on the GPU (the
 * denoiser, the VAE decoder, both scheduler-step graphs, DeepCache's full and shallow UNets when the
 * folder has them), each with its build request. {@code sdrt build-pipeline} builds them; {@code sdrt
 * bench --backend tensorrt} builds them per cell.
 *
 * <p>Profiles, from the request's images per batch B and size:
 * <pre>
 *   denoiser, DeepCache graphs   batch 2·B (guidance runs [uncond; cond] as one batch); dynamic: B_min .. 2·B_max
 *   VAE decoder                  batch B
 *   scheduler_step               batch B
 *   scheduler_step_guided        sample B, model_output and next_model_input 2·B
 *   spatial dimensions           size / vae_scale_factor (latent pixels); text length from the pipeline spec
 * </pre>
 * Static engines serve exactly that: guided requests of B images at that size.
 */
public final class PipelineEngines {
    private PipelineEngines() {
    }

    /** The components the device loop loads, in build order. */
    public static final List<String> COMPONENTS = List.of("denoiser", "vae_decoder", "scheduler_step", "scheduler_step_guided",
            "deepcache_full", "deepcache_shallow");

    /** One engine to build. */
    public record Target(String component, Path onnx, Path plan, EngineBuildRequest request) {
    }

    /**
     * The request's sizes: images per batch, and height and width ranges in image pixels (multiples of
     * the pipeline's VAE scale factor); {@code dynamic} for dynamic engines rather than static ones.
     */
    public record Shapes(DimRange images, DimRange height, DimRange width, boolean dynamic) {
    }

    /**
     * The engines to build for {@code pipeline} in {@code folder}, each with its request (profiles as
     * in the class comment). Reads only the spec: no GPU, no ONNX parsing. {@code only}, when not
     * null, keeps those components ({@code sdrt build-pipeline --only}, named in the refusals).
     */
    public static List<Target> targets(Path folder, PipelineSpec pipeline, Shapes shapes, int optLevel, Path timingCache, boolean tf32,
            List<String> only) {
        if (pipeline.schedulerStep == null || pipeline.schedulerStepGuided == null) {
            throw new IllegalArgumentException(folder + " has no scheduler-step graphs, which the device loop runs;"
                    + " re-export it with 'sdrt export-pipeline'");
        }
        Map<String, String> files = new LinkedHashMap<>();
        files.put("denoiser", pipeline.denoiser());
        files.put("vae_decoder", pipeline.vaeDecoder);
        files.put("scheduler_step", pipeline.schedulerStep);
        files.put("scheduler_step_guided", pipeline.schedulerStepGuided);
        if (pipeline.deepCacheFull != null && pipeline.deepCacheShallow != null) {
            files.put("deepcache_full", pipeline.deepCacheFull);
            files.put("deepcache_shallow", pipeline.deepCacheShallow);
        }
        if (only != null) {
            for (String name : only) {
                if (!COMPONENTS.contains(name)) {
                    throw new IllegalArgumentException("--only: unknown component '" + name + "'; choose from "
                            + String.join(", ", COMPONENTS));
                }
                if (!files.containsKey(name)) {
                    throw new IllegalArgumentException("--only " + name + ": " + folder + " has no DeepCache graphs"
                            + " (export with 'sdrt export-pipeline ... --deepcache-branch 0')");
                }
            }
        }
        long factor = pipeline.vaeScaleFactor;
        DimRange latentH = new DimRange(shapes.height().min() / factor, shapes.height().opt() / factor, shapes.height().max() / factor);
        DimRange latentW = new DimRange(shapes.width().min() / factor, shapes.width().opt() / factor, shapes.width().max() / factor);
        DimRange images = shapes.images();
        DimRange guided = new DimRange(2 * images.min(), 2 * images.opt(), 2 * images.max());
        // Unguided requests (guidance 1) run the denoiser at B, guided ones at 2·B: a dynamic denoiser takes both.
        DimRange denoiserBatch = new DimRange(images.min(), 2 * images.opt(), 2 * images.max());
        long tokens = pipeline.denoiserTextLength();
        List<Target> targets = new ArrayList<>();
        for (Map.Entry<String, String> e : files.entrySet()) {
            String component = e.getKey();
            if (only != null && !only.contains(component)) {
                continue;
            }
            Path onnx = folder.resolve(e.getValue());
            EngineBuildRequest.Builder request = EngineBuildRequest.builder(onnx)
                    .height(latentH)
                    .width(latentW)
                    .tokens(DimRange.fixed(tokens))
                    .staticShapes(!shapes.dynamic())
                    .optLevel(optLevel)
                    .timingCache(timingCache)
                    .tf32(tf32)
                    .passSpec("");
            switch (component) {
                case "denoiser", "deepcache_full", "deepcache_shallow" -> request.batch(denoiserBatch);
                case "vae_decoder" -> request.batch(images);
                case "scheduler_step" -> request.batch(images).dim("channels", DimRange.fixed(pipeline.latentChannels));
                case "scheduler_step_guided" -> request.batch(images).dim("guided_batch", guided)
                        .dim("channels", DimRange.fixed(pipeline.latentChannels));
                default -> throw new IllegalStateException(component);
            }
            targets.add(new Target(component, onnx, planFile(onnx), request.build()));
        }
        return targets;
    }

    /** X.plan beside X.onnx: where {@link TrtLoopDevice#planFor} looks. */
    public static Path planFile(Path onnx) {
        return TrtLoopDevice.besideOnnx(onnx, ".plan");
    }
}
