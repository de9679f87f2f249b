package dev.sdrt.runtime.pipeline;

import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.LongAdder;

/**
 * What a {@link Pipeline} has done since it opened, as {@link Pipeline#metrics()} read it. Each
 * figure is read on its own, so a snapshot taken while requests finish may count one of them in
 * one figure and not yet in another. Requests are those of {@link Pipeline#submit} and of
 * {@link Pipeline#generate} alike; stage times are per batch that ran to its end (a batch serves
 * every request in it at once).
 *
 * @param queueDepth requests waiting for the worker now, not counting the batch it runs
 * @param maxQueueDepth the most that may wait; {@link Pipeline#submit} refuses more
 * @param completed requests that finished with their images
 * @param failed requests that failed: the models', or their own listener's, exception
 * @param cancelled requests cancelled by their caller, their listener or the pipeline closing
 * @param timedOut requests whose deadline passed, queued or running
 * @param rejected submissions refused because the queue was full (not among the other counts)
 * @param queueWait per request the worker took: from {@code submit} to its batch starting
 * @param textEncode per batch: the text encoders, prompt-cache hits included
 * @param imageEncode per image-to-image batch: the VAE encoder
 * @param denoise per batch: the denoising loop (on a device loop, the VAE decoder too)
 * @param decode per batch: the VAE decoder (0 ms on a device loop, whose denoise span covers it)
 * @param promptCacheHits prompt lookups served from the text encoders' caches, one lookup per encoder
 *     and prompt (SDXL and SD3 look each prompt up in two)
 * @param promptCacheMisses prompt lookups that ran an encoder
 */
public record PipelineMetrics(int queueDepth, int maxQueueDepth, long completed, long failed, long cancelled, long timedOut,
        long rejected, Stage queueWait, Stage textEncode, Stage imageEncode, Stage denoise, Stage decode,
        long promptCacheHits, long promptCacheMisses) {

    /** Durations of one stage: how many there were, their sum and the longest, in milliseconds. */
    public record Stage(long count, double totalMs, double maxMs) {
        public double meanMs() {
            return count == 0 ? 0 : totalMs / count;
        }
    }

    /** Sums one stage's durations as they come, from any thread. */
    private static final class StageClock {
        private long count;
        private double totalMs;
        private double maxMs;

        synchronized void add(double ms) {
            count++;
            totalMs += ms;
            maxMs = Math.max(maxMs, ms);
        }

        synchronized Stage read() {
            return new Stage(count, totalMs, maxMs);
        }
    }

    /** A pipeline's running counts, told by its threads as requests finish and batches run. */
    static final class Recorder {
        private final LongAdder completed = new LongAdder();
        private final LongAdder failed = new LongAdder();
        private final LongAdder cancelled = new LongAdder();
        private final LongAdder timedOut = new LongAdder();
        private final LongAdder rejected = new LongAdder();
        private final StageClock queueWait = new StageClock();
        private final StageClock textEncode = new StageClock();
        private final StageClock imageEncode = new StageClock();
        private final StageClock denoise = new StageClock();
        private final StageClock decode = new StageClock();

        /** A request's future completed, with {@code failure} null for its images. */
        void finished(Throwable failure) {
            LongAdder count = failure == null ? completed
                    : failure instanceof CancellationException ? cancelled
                    : failure instanceof TimeoutException ? timedOut : failed;
            count.increment();
        }

        void rejected() {
            rejected.increment();
        }

        void waited(long nanos) {
            queueWait.add(nanos / 1e6);
        }

        /** A batch ran to its end. */
        void ran(GeneratedImage.Timings timings, boolean fromImage) {
            textEncode.add(timings.textEncoderMs());
            if (fromImage) {
                imageEncode.add(timings.vaeEncoderMs());
            }
            denoise.add(timings.denoiseMs());
            decode.add(timings.vaeDecoderMs());
        }

        PipelineMetrics read(int queueDepth, int maxQueueDepth, PromptCache.Stats promptCache) {
            return new PipelineMetrics(queueDepth, maxQueueDepth, completed.sum(), failed.sum(), cancelled.sum(),
                    timedOut.sum(), rejected.sum(), queueWait.read(), textEncode.read(), imageEncode.read(), denoise.read(),
                    decode.read(), promptCache.hits(), promptCache.misses());
        }
    }
}
