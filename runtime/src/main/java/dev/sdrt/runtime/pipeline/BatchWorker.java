package dev.sdrt.runtime.pipeline;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The request queue and its one worker thread, with the locks, the deadline timer and the metrics
 * recorder: what makes {@link Pipeline} safe to share across threads (its class doc states the
 * contract). Batches run {@link BatchRun} under the model lock; requests come in already admitted
 * ({@link RequestAdmission}).
 *
 * <p>Lock discipline: {@code queueLock} guards the queue and the writes of {@code closed}, so that
 * nothing joins the queue after close drains it; {@code modelLock} is held while a batch runs on the
 * models and by close while it frees them, and a batch that finds the pipeline closed under it is
 * cancelled instead of run. The locks nest only as {@code modelLock} then {@code queueLock} (a
 * listener's failure completes its future inside a batch, and the future leaves the queue), never
 * the other way. A batch's futures complete after {@code modelLock} is released, so that their
 * callbacks may close the pipeline.
 */
final class BatchWorker implements AutoCloseable {
    private final Pipeline.Limits limits;
    /** Guards {@link #queue} and the writes of {@link #closed}, so that nothing joins the queue after close drains it. */
    private final Object queueLock = new Object();
    /**
     * Waiting jobs, oldest first. A set, so that a job whose future completes while it waits
     * (cancelled, timed out) leaves at once and stops counting against the queue depth.
     */
    private final LinkedHashSet<Job> queue = new LinkedHashSet<>();
    /** Held while a batch runs on the models, and by close while it frees them. */
    private final Object modelLock = new Object();
    /** Completes futures at their deadlines; its one daemon thread starts with the first deadline. */
    private final ScheduledThreadPoolExecutor deadlines;
    private final PipelineMetrics.Recorder metrics = new PipelineMetrics.Recorder();
    private final BatchRun run;
    /** Freed by close, under {@link #modelLock}, once no batch runs on them. */
    private final PipelineParts models;
    private final Thread worker;
    /** Written under {@link #queueLock}; read without it where a stale false only means checking again under a lock. */
    private volatile boolean closed;
    /** Guarded by {@link #modelLock}. */
    private boolean modelsClosed;

    /**
     * Starts the worker thread.
     *
     * @param models what close frees once the running batch (if any) is done
     */
    BatchWorker(Pipeline.Limits limits, BatchRun run, PipelineParts models) {
        this.limits = limits;
        this.run = run;
        this.models = models;
        this.deadlines = new ScheduledThreadPoolExecutor(1, task -> {
            Thread t = new Thread(task, "sdrt-pipeline-deadlines");
            t.setDaemon(true);
            return t;
        });
        // a request that finishes in time cancels its deadline; the timer should not hold it until then
        deadlines.setRemoveOnCancelPolicy(true);
        this.worker = new Thread(this::serve, "sdrt-pipeline");
        worker.setDaemon(true);
        worker.start();
    }

    /** True once close has begun; a stale false only means checking again under a lock. */
    boolean closed() {
        return closed;
    }

    /**
     * Queues an admitted request for the worker (see {@link Pipeline#submit(GenerationRequest,
     * StepListener, Instant)}).
     */
    CompletableFuture<GeneratedImage> submit(GenerationRequest resolved, StepListener listener, Instant deadline) {
        CompletableFuture<GeneratedImage> future = new CompletableFuture<>();
        Job job = new Job(resolved, listener, future, System.nanoTime());
        synchronized (queueLock) {
            if (closed) {
                return closedFuture();
            }
            if (queue.size() >= limits.maxQueueDepth()) {
                metrics.rejected();
                throw new RejectedExecutionException("queue full: " + queue.size() + " requests waiting (max "
                        + limits.maxQueueDepth() + ")");
            }
            if (deadline != null && !deadline.isAfter(Instant.now())) {
                // Passed already: it never joins the queue, so the worker cannot take it before the timer fails it.
                future.whenComplete((image, failure) -> metrics.finished(failure));
                future.completeExceptionally(new TimeoutException("deadline passed before the request started"));
                return future;
            }
            queue.add(job);
            future.whenComplete((image, failure) -> {
                dequeue(job);
                metrics.finished(failure);
            });
            // Scheduled under the lock: close shuts the timer down only after it has set closed under it.
            Duration untilDeadline = deadline == null ? null : Duration.between(Instant.now(), deadline);
            // (a deadline centuries away is as good as none, and its nanoseconds would overflow)
            if (untilDeadline != null && untilDeadline.compareTo(ChronoUnit.CENTURIES.getDuration()) < 0) {
                ScheduledFuture<?> timer = deadlines.schedule(() -> expire(job), untilDeadline.toNanos(), TimeUnit.NANOSECONDS);
                future.whenComplete((image, failure) -> timer.cancel(false));
            }
            queueLock.notifyAll();
        }
        return future;
    }

    /** Runs one admitted request on the calling thread, between the worker's batches. */
    GeneratedImage generate(GenerationRequest resolved, StepListener listener) {
        Job job = new Job(resolved, listener, new CompletableFuture<>(), System.nanoTime());
        job.future().whenComplete((image, failure) -> metrics.finished(failure));
        runBatch(List.of(job));
        return job.future().join();
    }

    /** The metrics so far, with the queue depth read under the queue lock. */
    PipelineMetrics metrics(PromptCache.Stats cacheStats) {
        int depth;
        synchronized (queueLock) {
            depth = queue.size();
        }
        return metrics.read(depth, limits.maxQueueDepth(), cacheStats);
    }

    /** What {@link #submit} returns once the pipeline is closed. */
    CompletableFuture<GeneratedImage> closedFuture() {
        CancellationException closing = new CancellationException("pipeline closed");
        metrics.finished(closing);
        return CompletableFuture.failedFuture(closing);
    }

    private void dequeue(Job job) {
        synchronized (queueLock) {
            queue.remove(job);
        }
    }

    /** The deadline timer's task: the job leaves the queue if it is still there, and its future fails. */
    private void expire(Job job) {
        boolean waiting;
        synchronized (queueLock) {
            waiting = queue.remove(job);
        }
        job.future().completeExceptionally(new TimeoutException(waiting ? "deadline passed before the request started"
                : "deadline passed while the request was running"));
    }

    /** The worker: runs batch after batch until close. */
    private void serve() {
        for (List<Job> batch = nextBatch(); batch != null; batch = nextBatch()) {
            runBatch(batch);
        }
    }

    /**
     * Waits for a job, then takes the oldest one plus every waiting job that can share its batch;
     * null once the pipeline is closed (close has cancelled whatever was waiting).
     */
    private List<Job> nextBatch() {
        synchronized (queueLock) {
            while (queue.isEmpty() && !closed) {
                try {
                    queueLock.wait();
                } catch (InterruptedException e) {
                    // nobody but close ends the worker, and close says so through closed
                }
            }
            if (closed) {
                return null;
            }
            Iterator<Job> waiting = queue.iterator();
            Job first = waiting.next();
            waiting.remove();
            List<Job> batch = new ArrayList<>(List.of(first));
            int images = first.request().batchSize();
            while (waiting.hasNext()) {
                Job other = waiting.next();
                if (other.request().batchableWith(first.request()) && images + other.request().batchSize() <= limits.maxBatchImages()) {
                    waiting.remove();
                    batch.add(other);
                    images += other.request().batchSize();
                }
            }
            long now = System.nanoTime();
            for (Job job : batch) {
                if (!job.abandoned()) {
                    metrics.waited(now - job.submittedNanos());
                }
            }
            return batch;
        }
    }

    /**
     * Runs the jobs still wanted as one batch and completes their futures, with their images or with
     * why they failed; cancels them if the pipeline closed first, so no batch runs on freed models.
     * The futures complete after the model lock is released, so that their callbacks may close the
     * pipeline.
     */
    private void runBatch(List<Job> jobs) {
        List<Job> live;
        List<GeneratedImage> results = null;
        Throwable failure = null;
        synchronized (modelLock) {
            live = jobs.stream().filter(job -> !job.abandoned()).toList();
            if (live.isEmpty()) {
                return;
            }
            if (closed) {
                failure = new CancellationException("pipeline closed");
            } else {
                try {
                    results = run.run(live);
                    metrics.ran(results.get(0).timings(), live.get(0).request().initImage() != null);
                } catch (Throwable t) {
                    failure = t;
                }
            }
        }
        for (int i = 0; i < live.size(); i++) {
            if (failure == null) {
                live.get(i).future().complete(results.get(i));
            } else {
                live.get(i).future().completeExceptionally(failure);
            }
        }
    }

    /** See {@link Pipeline#close()}. */
    @Override
    public void close() {
        if (Thread.holdsLock(modelLock)) {
            throw new IllegalStateException("close() was called inside a running batch (from a step listener, or a callback"
                    + " of a future that listener failed); close the pipeline from another thread");
        }
        List<Job> waiting;
        synchronized (queueLock) {
            closed = true;
            waiting = List.copyOf(queue);
            queue.clear();
            queueLock.notifyAll();
        }
        for (Job job : waiting) {
            job.future().completeExceptionally(new CancellationException("pipeline closed"));
        }
        // A future's callback may close the pipeline on the worker, which then ends after the callback returns.
        if (Thread.currentThread() != worker) {
            joinUninterruptibly(worker);
        }
        synchronized (modelLock) {
            if (!modelsClosed) {
                modelsClosed = true;
                models.close();
            }
        }
        // after the worker: a running batch's deadlines still fire while close waits for it
        deadlines.shutdownNow();
    }

    private static void joinUninterruptibly(Thread thread) {
        boolean interrupted = false;
        while (true) {
            try {
                thread.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
