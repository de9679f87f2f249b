package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.cudaGraphDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphExecDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphInstantiate;
import static org.bytedeco.cuda.global.cudart.cudaGraphLaunch;
import static org.bytedeco.cuda.global.cudart.cudaStreamBeginCapture;
import static org.bytedeco.cuda.global.cudart.cudaStreamCaptureModeThreadLocal;
import static org.bytedeco.cuda.global.cudart.cudaStreamEndCapture;

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
     * itself must not synchronize or allocate.
     */
    public static CudaGraph capture(CudaStream stream, Recording recording) {
        CUgraph_st graph = captureTemplate(stream, recording);
        try {
            return instantiate(graph);
        } finally {
            // The executable graph keeps what it needs; the template is no longer used.
            cudaGraphDestroy(graph);
        }
    }

    /**
     * Records what {@code recording} queues on {@code stream} into a graph template, which the caller
     * owns (and destroys with cudaGraphDestroy).
     */
    static CUgraph_st captureTemplate(CudaStream stream, Recording recording) {
        Cuda.check(cudaStreamBeginCapture(stream.handle(), cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        CUgraph_st graph = new CUgraph_st();
        RuntimeException recordingFailure = null;
        try {
            recording.enqueue(stream);
        } catch (RuntimeException e) {
            recordingFailure = e;
        }
        // End the capture even when recording failed, or the stream stays in capture mode.
        int endStatus = cudaStreamEndCapture(stream.handle(), graph);
        if (recordingFailure != null) {
            if (!graph.isNull()) {
                cudaGraphDestroy(graph);
            }
            throw recordingFailure;
        }
        Cuda.check(endStatus, "cudaStreamEndCapture");
        return graph;
    }

    /** Instantiates a template; the template stays the caller's and may be changed or destroyed after. */
    static CudaGraph instantiate(CUgraph_st graph) {
        CUgraphExec_st executable = new CUgraphExec_st();
        Cuda.check(cudaGraphInstantiate(executable, graph, 0L), "cudaGraphInstantiate");
        return new CudaGraph(executable);
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
