package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaGetLastError;
import static org.bytedeco.cuda.global.cudart.cudaGraphDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphExecDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphInstantiate;
import static org.bytedeco.cuda.global.cudart.cudaGraphLaunch;
import static org.bytedeco.cuda.global.cudart.cudaStreamBeginCapture;
import static org.bytedeco.cuda.global.cudart.cudaStreamCaptureModeThreadLocal;
import static org.bytedeco.cuda.global.cudart.cudaStreamEndCapture;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;

import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUgraph_st;

/**
 * An instantiated CUDA graph: GPU work recorded once from a stream and replayed with one launch.
 * Replaying removes the per-kernel host launch cost, which dominates small models and the
 * step-by-step denoise loop.
 *
 * <p>A graph replays exactly what was captured: the same kernels on the same device addresses with
 * the same shapes. Change an input's contents freely (copy new data into the same buffer); change a
 * buffer address or a shape and the graph must be captured again.
 */
public final class CudaGraph implements AutoCloseable {

    /** Work to record; it must only queue asynchronous work on the given stream. */
    @FunctionalInterface
    public interface Recording {
        void enqueue(CudaStream stream);
    }

    private final CUgraphExec_st executable;
    private boolean closed;

    private CudaGraph(CUgraphExec_st executable) {
        this.executable = executable;
    }

    /**
     * Records what {@code recording} queues on {@code stream} and instantiates it. Capture uses
     * thread-local mode, so other threads of the JVM may keep using CUDA meanwhile; the recording
     * itself must not synchronize or allocate. When it fails, the stream is out of capture mode and
     * CUDA's last error is cleared (see {@link #captureTemplate}), so the same work can be queued
     * without a graph.
     */
    public static CudaGraph capture(CudaStream stream, Recording recording) {
        CUgraph_st graph = captureTemplate(stream, recording);
        CudaGraph instantiated;
        try {
            instantiated = instantiate(graph);
        } catch (RuntimeException e) {
            destroyAfterFailure(graph, e);
            throw e;
        }
        // The executable graph keeps what it needs; the template is no longer used.
        try {
            destroy(graph);
        } catch (RuntimeException e) {
            instantiated.close();
            throw e;
        }
        return instantiated;
    }

    /**
     * Records what {@code recording} queues on {@code stream} into a graph template, which the caller
     * owns (and frees with {@link #destroy}). When recording or ending the capture fails, the capture
     * is ended all the same (or the stream would stay in capture mode and refuse eager work), any
     * partial graph is destroyed, and CUDA's last error is cleared, as trtexec does after a failed
     * capture: a failed capture leaves an error that the next unrelated call would report otherwise.
     */
    static CUgraph_st captureTemplate(CudaStream stream, Recording recording) {
        int beginStatus = cudaStreamBeginCapture(stream.handle(), cudaStreamCaptureModeThreadLocal);
        if (beginStatus != cudaSuccess) {
            cudaGetLastError();
            throw Cuda.failure(beginStatus, "cudaStreamBeginCapture");
        }
        CUgraph_st graph = new CUgraph_st();
        RuntimeException failure = null;
        try {
            recording.enqueue(stream);
        } catch (RuntimeException e) {
            failure = e;
        }
        int endStatus = cudaStreamEndCapture(stream.handle(), graph);
        if (failure == null && endStatus == cudaSuccess) {
            return graph;
        }
        if (endStatus != cudaSuccess) {
            CudaException ended = Cuda.failure(endStatus, "cudaStreamEndCapture");
            if (failure == null) {
                failure = ended;
            } else {
                failure.addSuppressed(ended);
            }
        }
        destroyAfterFailure(graph, failure);
        throw failure;
    }

    /** Instantiates a template; the template stays the caller's and may be changed or destroyed after. */
    static CudaGraph instantiate(CUgraph_st graph) {
        CUgraphExec_st executable = new CUgraphExec_st();
        Cuda.check(cudaGraphInstantiate(executable, graph, 0L), "cudaGraphInstantiate");
        return new CudaGraph(executable);
    }

    /** cudaGraphDestroy on a template, checked. */
    static void destroy(CUgraph_st graph) {
        Cuda.check(cudaGraphDestroy(graph), "cudaGraphDestroy");
    }

    /**
     * After {@code failure}: destroys what there is of the template (a failure to do so joins
     * {@code failure} rather than hiding it) and clears CUDA's last error.
     */
    private static void destroyAfterFailure(CUgraph_st graph, RuntimeException failure) {
        if (!graph.isNull()) {
            int status = cudaGraphDestroy(graph);
            if (status != cudaSuccess) {
                failure.addSuppressed(Cuda.failure(status, "cudaGraphDestroy"));
            }
        }
        cudaGetLastError();
    }

    /** Queues one replay of the graph on {@code stream}; asynchronous. */
    public void launch(CudaStream stream) {
        if (closed) {
            throw new IllegalStateException("the CUDA graph is closed");
        }
        Cuda.check(cudaGraphLaunch(executable, stream.handle()), "cudaGraphLaunch");
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Cuda.check(cudaGraphExecDestroy(executable), "cudaGraphExecDestroy");
        }
    }
}
