package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.exportRandomPipeline;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import dev.sdrt.runtime.pipeline.GeneratedImage;
import dev.sdrt.runtime.pipeline.GenerationRequest;
import dev.sdrt.runtime.pipeline.Pipeline;
import dev.sdrt.runtime.pipeline.PipelineMetrics;
import dev.sdrt.runtime.pipeline.StepListener;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Pipeline#submit} driven from many threads at once, as a service would: no future is lost
 * to cancellations, deadlines and close racing the submissions; deadlines fire on time while
 * queued; one caller's listener fails only its own request; a full queue refuses clearly; and every
 * image equals the one the same request gives alone. Seeded and small (a tiny random-weight
 * pipeline at 32x32, 2 to 4 steps), so it runs in seconds on two cores.
 */
class PipelineConcurrencyTest {
    /** Requests the tests draw from; the first three share a batch, as do the fourth and fifth. */
    static final List<GenerationRequest> KINDS = List.of(
            GenerationRequest.of("a boat").withSteps(3).withSeed(1).withScheduler("euler-a"),
            GenerationRequest.of("a tree").withSteps(3).withSeed(2).withScheduler("euler-a").withBatchSize(2),
            GenerationRequest.of("").withSteps(3).withSeed(3).withScheduler("euler-a"),
            GenerationRequest.of("a cat").withSteps(2).withSeed(4).withSize(48, 32),
            GenerationRequest.of("a dog").withNegativePrompt("blurry").withSteps(2).withSeed(5).withSize(48, 32),
            GenerationRequest.of("a boat").withSteps(4).withSeed(6).withGuidanceScale(1));

    /** The request {@link #holdWorker} runs; of its own size, so that nothing shares its batch. */
    static final GenerationRequest HOLD = GenerationRequest.of("hold the worker").withSteps(3).withSize(32, 48);

    @TempDir
    static Path tmp;
    static Path folder;
    /** One pipeline for the tests that do not close it. */
    static Pipeline shared;
    /** Each kind's images when it runs alone. */
    static final Map<GenerationRequest, byte[][]> alone = new LinkedHashMap<>();

    @BeforeAll
    static void exportAndRunEachKindAlone() throws Exception {
        folder = exportRandomPipeline(tmp, "tiny", "--seed", "1");
        shared = Pipeline.open(folder, 1);
        for (GenerationRequest kind : KINDS) {
            alone.put(kind, shared.generate(kind, StepListener.NONE).rgb());
        }
    }

    @AfterAll
    static void closeShared() {
        shared.close();
    }

    /** A submitted request: which kind, its future, whether the test cancelled it and whether it had a deadline. */
    record Submitted(GenerationRequest kind, CompletableFuture<GeneratedImage> future, boolean cancelledByTest,
            boolean hadDeadline) {
    }

    @Test
    void noFutureIsLostWhenSubmissionsRaceCancellationsDeadlinesAndClose() throws Exception {
        int rounds = 20;
        int submitters = 4;
        int perSubmitter = 8;
        Random random = new Random(20240611);
        ExecutorService threads = Executors.newFixedThreadPool(submitters + 1);
        try {
            for (int round = 0; round < rounds; round++) {
                Pipeline p = Pipeline.open(folder, 1);
                List<Submitted> submitted = Collections.synchronizedList(new ArrayList<>());
                CyclicBarrier start = new CyclicBarrier(submitters + 1);
                List<Future<?>> tasks = new ArrayList<>();
                for (int t = 0; t < submitters; t++) {
                    Random own = new Random(random.nextLong());
                    tasks.add(threads.submit(() -> {
                        start.await();
                        for (int i = 0; i < perSubmitter; i++) {
                            GenerationRequest kind = KINDS.get(own.nextInt(KINDS.size()));
                            if (own.nextInt(10) == 0) {
                                generateRacingClose(p, kind);
                                continue;
                            }
                            boolean deadline = own.nextInt(10) == 0;
                            CompletableFuture<GeneratedImage> future = p.submit(kind, StepListener.NONE,
                                    deadline ? Instant.now().plusMillis(own.nextInt(60)) : null);
                            boolean cancel = own.nextInt(5) == 0;
                            submitted.add(new Submitted(kind, future, cancel, deadline));
                            Thread.sleep(own.nextInt(6));
                            if (cancel) {
                                future.cancel(true);
                            }
                        }
                        return null;
                    }));
                }
                // every other round while the submitters are at it, the others after them, mostly with a batch running
                long closeAfterMs = round % 2 == 0 ? random.nextInt(40) : 150 + random.nextInt(250);
                tasks.add(threads.submit(() -> {
                    start.await();
                    Thread.sleep(closeAfterMs);
                    p.close();
                    return null;
                }));
                for (Future<?> task : tasks) {
                    task.get(30, TimeUnit.SECONDS);
                }
                p.close();

                String where = "round " + round + " (closed after " + closeAfterMs + " ms)";
                // close has returned and no submitter is left: nothing may still be pending
                for (Submitted s : submitted) {
                    assertThat(s.future()).as(where + ": a future close left pending").isDone();
                    checkOutcome(where, s);
                }
                assertThat(p.submit(KINDS.get(0), StepListener.NONE)).as(where).isCancelled();
                assertThatThrownBy(() -> p.submit(KINDS.get(0), StepListener.NONE).get()).hasMessage("pipeline closed");
                assertThatThrownBy(() -> p.generate(KINDS.get(0), StepListener.NONE)).isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("closed");
            }
        } finally {
            threads.shutdownNow();
        }
    }

    /** On the calling thread, between the worker's batches: its images, or refused because close came first. */
    private static void generateRacingClose(Pipeline p, GenerationRequest kind) {
        try {
            assertSameImages("generate", p.generate(kind, StepListener.NONE), kind);
        } catch (CancellationException e) {
            // closed after generate's first look, before its batch took the models
            assertThat(e).hasMessage("pipeline closed");
        } catch (IllegalStateException e) {
            assertThat(e).hasMessage("pipeline is closed");
        }
    }

    /** Its images, equal to those it gives alone; cancelled by the test or by close; or past its deadline. */
    private static void checkOutcome(String where, Submitted s) throws InterruptedException {
        try {
            assertSameImages(where, s.future().get(), s.kind());
        } catch (CancellationException e) {
            if (!s.cancelledByTest()) {
                assertThat(e).as(where + ": cancelled by whom?").hasMessage("pipeline closed");
            }
        } catch (ExecutionException e) {
            if (!(s.hadDeadline() && e.getCause() instanceof TimeoutException)) {
                fail(where + ": " + s.kind().prompt() + " failed", e.getCause());
            }
        }
    }

    private static void assertSameImages(String where, GeneratedImage image, GenerationRequest kind) {
        assertThat(Arrays.deepEquals(image.rgb(), alone.get(kind))).as(where + ": " + kind.prompt() + " seed " + kind.seed()
                + " gives the images it gives alone").isTrue();
    }

    @Test
    void deadlinesCompleteQueuedFuturesWithin100MillisecondsOfTheirTime() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<GeneratedImage> hold = holdWorker(shared, release);
        try {
            long timedOutBefore = shared.metrics().timedOut();
            List<Instant> deadlines = new ArrayList<>();
            List<CompletableFuture<Instant>> completedAt = new ArrayList<>();
            List<CompletableFuture<GeneratedImage>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                Instant deadline = Instant.now().plusMillis(30 + 50 * i);
                CompletableFuture<GeneratedImage> f = shared.submit(KINDS.get(i % KINDS.size()), StepListener.NONE, deadline);
                deadlines.add(deadline);
                // stamped by the thread that completes the future, as it does
                completedAt.add(f.handle((image, failure) -> Instant.now()));
                futures.add(f);
            }
            for (int i = 0; i < futures.size(); i++) {
                CompletableFuture<GeneratedImage> f = futures.get(i);
                assertThatThrownBy(() -> f.get(2, TimeUnit.SECONDS)).as("request " + i + " while the worker is busy")
                        .isInstanceOf(ExecutionException.class).cause().isInstanceOf(TimeoutException.class)
                        .hasMessage("deadline passed before the request started");
                Duration late = Duration.between(deadlines.get(i), completedAt.get(i).get(2, TimeUnit.SECONDS));
                assertThat(late).as("request " + i + " completed this long after its deadline")
                        .isBetween(Duration.ofMillis(-1), Duration.ofMillis(100));
            }
            PipelineMetrics after = shared.metrics();
            assertThat(after.queueDepth()).as("timed-out requests leave the queue").isZero();
            assertThat(after.timedOut() - timedOutBefore).isEqualTo(8);
            assertThat(hold).isNotDone();
        } finally {
            hold.cancel(true);
            release.countDown();
        }
        // the worker drops the cancelled batch at its next step and serves on
        assertSameImages("after the deadlines", shared.submit(KINDS.get(0), StepListener.NONE).get(30, TimeUnit.SECONDS),
                KINDS.get(0));
    }

    @Test
    void aListenerThatThrowsFailsOnlyItsOwnRequest() throws Exception {
        assertThatThrownBy(() -> shared.submit(KINDS.get(0), null)).isInstanceOf(NullPointerException.class)
                .hasMessageContaining("StepListener.NONE");
        assertThatThrownBy(() -> shared.generate(KINDS.get(0), null)).isInstanceOf(NullPointerException.class)
                .hasMessageContaining("StepListener.NONE");

        GenerationRequest boat = KINDS.get(0);
        GenerationRequest empty = KINDS.get(2);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<GeneratedImage> hold = holdWorker(shared, release);
        long batchesBefore = shared.metrics().denoise().count();
        // Four requests of one shape, queued behind the held worker, so that they run as one batch.
        List<Integer> quietSteps = Collections.synchronizedList(new ArrayList<>());
        List<Integer> brokenSteps = Collections.synchronizedList(new ArrayList<>());
        List<Integer> cancellingSteps = Collections.synchronizedList(new ArrayList<>());
        IllegalStateException broken = new IllegalStateException("this caller's listener broke");
        CompletableFuture<GeneratedImage> quiet = shared.submit(boat, (done, total) -> quietSteps.add(done));
        CompletableFuture<GeneratedImage> failing = shared.submit(boat, (done, total) -> {
            brokenSteps.add(done);
            if (done == 2) {
                throw broken;
            }
        });
        CompletableFuture<GeneratedImage> cancelling = shared.submit(empty, (done, total) -> {
            cancellingSteps.add(done);
            throw new CancellationException("this caller gave up");
        });
        CompletableFuture<GeneratedImage> other = shared.submit(empty, StepListener.NONE);
        hold.cancel(true);
        release.countDown();

        assertSameImages("beside the throwing listeners", quiet.get(30, TimeUnit.SECONDS), boat);
        assertSameImages("beside the throwing listeners", other.get(30, TimeUnit.SECONDS), empty);
        assertThat(quietSteps).containsExactly(1, 2, 3);
        assertThatThrownBy(failing::get).isInstanceOf(ExecutionException.class).cause().isSameAs(broken);
        assertThat(brokenSteps).as("not called again after it threw").containsExactly(1, 2);
        assertThat(cancelling).isCancelled();
        assertThatThrownBy(cancelling::get).hasMessage("this caller gave up");
        assertThat(cancellingSteps).containsExactly(1);
        assertThat(shared.metrics().denoise().count() - batchesBefore).as("the four ran as one batch").isEqualTo(1);
    }

    @Test
    void requestsQueuedFromManyThreadsShareBatchesAndGiveTheirImagesAlone() throws Exception {
        PipelineMetrics before = shared.metrics();
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<GeneratedImage> hold = holdWorker(shared, release);
        int submitters = 4;
        ExecutorService threads = Executors.newFixedThreadPool(submitters);
        Map<CompletableFuture<GeneratedImage>, GenerationRequest> futures = Collections.synchronizedMap(new LinkedHashMap<>());
        try {
            CyclicBarrier start = new CyclicBarrier(submitters);
            List<Future<?>> tasks = new ArrayList<>();
            for (int t = 0; t < submitters; t++) {
                int first = t;
                tasks.add(threads.submit(() -> {
                    start.await();
                    for (int i = 0; i < KINDS.size(); i++) {
                        GenerationRequest kind = KINDS.get((first + i) % KINDS.size());
                        futures.put(shared.submit(kind, StepListener.NONE), kind);
                    }
                    return null;
                }));
            }
            for (Future<?> task : tasks) {
                task.get(30, TimeUnit.SECONDS);
            }
        } finally {
            threads.shutdownNow();
            hold.cancel(true);
            release.countDown();
        }
        List<GeneratedImage.Timings> batches = new ArrayList<>();
        for (Map.Entry<CompletableFuture<GeneratedImage>, GenerationRequest> e : futures.entrySet()) {
            GeneratedImage image = e.getKey().get(30, TimeUnit.SECONDS);
            assertSameImages("queued from four threads", image, e.getValue());
            if (batches.stream().noneMatch(b -> b == image.timings())) {
                batches.add(image.timings());
            }
        }
        assertThat(batches.size()).as("batches for %d requests", futures.size()).isLessThan(futures.size());

        PipelineMetrics after = shared.metrics();
        assertThat(after.completed() - before.completed()).isEqualTo(futures.size());
        assertThat(after.cancelled() - before.cancelled()).as("the held request").isEqualTo(1);
        assertThat(after.denoise().count() - before.denoise().count()).isEqualTo(batches.size());
        assertThat(after.decode().count() - before.decode().count()).isEqualTo(batches.size());
        assertThat(after.textEncode().count() - before.textEncode().count()).isEqualTo(batches.size());
        assertThat(after.queueWait().count() - before.queueWait().count()).as("every request the worker took")
                .isEqualTo(futures.size() + 1);
        assertThat(after.queueWait().maxMs()).isPositive();
        assertThat(after.denoise().meanMs()).isPositive().isLessThanOrEqualTo(after.denoise().maxMs());
        assertThat(after.promptCacheHits() - before.promptCacheHits()).as("every prompt was encoded before")
                .isPositive();
        assertThat(after.promptCacheMisses()).isEqualTo(before.promptCacheMisses());
        assertThat(after.queueDepth()).isZero();
    }

    @Test
    void aFullQueueRefusesMoreWithTheDepthAndCloseCancelsWhatWaits() throws Exception {
        try (Pipeline p = Pipeline.open(folder, 1, new Pipeline.Limits(4, 3))) {
            CountDownLatch release = new CountDownLatch(1);
            CompletableFuture<GeneratedImage> running = holdWorker(p, release);
            List<CompletableFuture<GeneratedImage>> waiting = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                waiting.add(p.submit(KINDS.get(3), StepListener.NONE));
            }
            assertThatThrownBy(() -> p.submit(KINDS.get(3), StepListener.NONE)).isInstanceOf(RejectedExecutionException.class)
                    .hasMessage("queue full: 3 requests waiting (max 3)");
            waiting.get(0).cancel(true);
            assertThat(p.metrics().queueDepth()).as("a cancelled request leaves the queue").isEqualTo(2);
            waiting.set(0, p.submit(KINDS.get(3), StepListener.NONE));

            CompletableFuture<Void> closing = CompletableFuture.runAsync(p::close);
            for (CompletableFuture<GeneratedImage> f : waiting) {
                assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS)).isInstanceOf(CancellationException.class)
                        .hasMessage("pipeline closed");
            }
            assertThat(closing).as("close waits for the running batch").isNotDone();
            release.countDown();
            closing.get(30, TimeUnit.SECONDS);
            assertThat(running.get().count()).as("finished while closing").isEqualTo(1);

            PipelineMetrics m = p.metrics();
            assertThat(m.rejected()).isEqualTo(1);
            assertThat(m.cancelled()).isEqualTo(4);
            assertThat(m.completed()).isEqualTo(1);
            assertThat(m.maxQueueDepth()).isEqualTo(3);
        }
    }

    /**
     * Submits {@link #HOLD} with a listener that keeps the worker after its first step until {@code
     * release} opens (10 s at most, should a test fail first), and returns once the worker is there:
     * what is submitted next waits in the queue.
     */
    private static CompletableFuture<GeneratedImage> holdWorker(Pipeline p, CountDownLatch release) throws InterruptedException {
        CountDownLatch holding = new CountDownLatch(1);
        CompletableFuture<GeneratedImage> hold = p.submit(HOLD, (done, total) -> {
            if (done == 1) {
                holding.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        assertThat(holding.await(30, TimeUnit.SECONDS)).as("the worker started the held request").isTrue();
        return hold;
    }
}
