package dev.sdrt.runtime.pipeline;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.scheduler.SchedulerConfig;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.text.ClipTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What a pipeline folder loads into: its spec and scheduler configuration, the text conditioning
 * (tokenizers and text encoders), the VAE encoder and the denoise stage (denoiser, VAE decoder and,
 * on a device, the scheduler-step graphs). Opening is all or nothing: a model that fails to open
 * closes those opened before it.
 *
 * @param folder the folder the parts came from (its name stands for the model in the images' parameters)
 * @param vaeEncoder null when the folder has none (text to image only)
 */
record PipelineParts(Path folder, PipelineSpec spec, SchedulerConfig schedulerConfig, TextConditioner conditioner,
        OrtRunner vaeEncoder, DenoiseStage stage) implements AutoCloseable {

    /** Opens the denoise stage, once the shared parts are open. */
    interface StageOpener {
        DenoiseStage open() throws IOException;
    }

    /** Opens one model of a pipeline. */
    interface Opening<T> {
        T open() throws IOException;
    }

    /**
     * Opens what both kinds of stage share (tokenizers, text encoders, the VAE encoder) on ONNX
     * Runtime, then the stage.
     */
    static PipelineParts open(Path folder, PipelineSpec spec, int threads, LoadListener listener, StageOpener stageOpener)
            throws IOException {
        PipelineFamily family = spec.family();
        ClipTokenizer tokenizer = ClipTokenizer.load(folder.resolve(spec.tokenizer));
        ClipTokenizer tokenizer2 = family == PipelineFamily.SD ? null : ClipTokenizer.load(folder.resolve(spec.tokenizer2));
        Path schedulerFile = folder.resolve(spec.schedulerConfig);
        SchedulerConfig schedulerConfig = Files.exists(schedulerFile) ? SchedulerConfig.fromJson(schedulerFile)
                : family == PipelineFamily.SD3 ? SchedulerConfig.stableDiffusion3() : SchedulerConfig.stableDiffusion();
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            OrtRunner textEncoder = ort("text_encoder", folder.resolve(spec.textEncoder), threads, listener);
            opened.add(textEncoder);
            OrtRunner textEncoder2 = family == PipelineFamily.SD ? null
                    : ort("text_encoder_2", folder.resolve(spec.textEncoder2), threads, listener);
            opened.add(textEncoder2);
            OrtRunner vaeEncoder = spec.vaeEncoder == null ? null
                    : ort("vae_encoder", folder.resolve(spec.vaeEncoder), threads, listener);
            opened.add(vaeEncoder);
            DenoiseStage stage = stageOpener.open();
            opened.add(stage);
            TextConditioner conditioner = conditioner(spec, stage, tokenizer, textEncoder, tokenizer2, textEncoder2);
            return new PipelineParts(folder, spec, schedulerConfig, conditioner, vaeEncoder, stage);
        } catch (IOException | RuntimeException e) {
            closeAll(opened);
            throw e;
        }
    }

    PipelineFamily family() {
        return spec.family();
    }

    /** Frees the models: text encoders, denoise stage, VAE encoder. */
    @Override
    public void close() {
        conditioner.close();
        stage.close();
        if (vaeEncoder != null) {
            vaeEncoder.close();
        }
    }

    static OrtRunner ort(String component, Path file, int threads, LoadListener listener) throws IOException {
        return opening(listener, component, file, () -> ort(file, threads));
    }

    /** An ONNX Runtime session on the CPU; threads 0 means all cores. */
    static OrtRunner ort(Path file, int threads) {
        OrtRunner.Builder b = OrtRunner.builder(file);
        if (threads > 0) {
            b.intraOpThreads(threads);
        }
        return b.build();
    }

    /** Runs {@code opening}, telling {@code listener} before, and after with the time it took or that it failed. */
    static <T> T opening(LoadListener listener, String component, Path file, Opening<T> opening) throws IOException {
        listener.loading(component, file);
        long start = System.nanoTime();
        T opened;
        try {
            opened = opening.open();
        } catch (Throwable t) {
            listener.failed(component, file);
            throw t;
        }
        listener.loaded(component, file, (System.nanoTime() - start) / 1e9);
        return opened;
    }

    /** Closes what opened before a failure; nulls (parts the folder has none of) are skipped. */
    static void closeAll(List<? extends AutoCloseable> opened) {
        for (AutoCloseable c : opened) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // already failing; the first error is the one to report
                }
            }
        }
    }

    private static TextConditioner conditioner(PipelineSpec spec, DenoiseStage stage, ClipTokenizer tokenizer,
            OrtRunner textEncoder, ClipTokenizer tokenizer2, OrtRunner textEncoder2) {
        ClipTextEncoder first = new ClipTextEncoder(tokenizer, textEncoder, spec.maxTextLength);
        return switch (spec.family()) {
            case SD -> TextConditioner.sd(first);
            case SDXL -> TextConditioner.sdxl(first, new ClipTextEncoder(tokenizer2, textEncoder2, spec.maxTextLength),
                    spec.forceZerosForEmptyPrompt);
            case SD3 -> {
                TensorSpec context = stage.denoiserInputs().get("encoder_hidden_states");
                long[] shape = context == null ? null : context.shape();
                if (shape == null || shape.length != 3 || shape[2] <= 0) {
                    throw new IllegalStateException(stage.denoiserName() + ": expected an input encoder_hidden_states"
                            + " [batch, tokens, joint_attention_dim] with a fixed last dimension");
                }
                yield TextConditioner.sd3(first, new ClipTextEncoder(tokenizer2, textEncoder2, spec.maxTextLength),
                        shape[2], spec.t5SequenceLength);
            }
        };
    }
}
