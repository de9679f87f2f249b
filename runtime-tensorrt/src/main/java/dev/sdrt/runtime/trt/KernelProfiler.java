package dev.sdrt.runtime.trt;

import static org.bytedeco.cuda.global.cudart.CUDA_SUCCESS;
import static org.bytedeco.cuda.global.cudart.cuFuncGetName;
import static org.bytedeco.cuda.global.cudart.cuGraphKernelNodeGetParams;
import static org.bytedeco.cuda.global.cudart.cuKernelGetName;
import static org.bytedeco.cuda.global.cudart.cudaEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cudaGraphAddDependencies;
import static org.bytedeco.cuda.global.cudart.cudaGraphAddEventRecordNode;
import static org.bytedeco.cuda.global.cudart.cudaGraphGetRootNodes;
import static org.bytedeco.cuda.global.cudart.cudaGraphNodeGetDependentNodes_v2;
import static org.bytedeco.cuda.global.cudart.cudaGraphNodeGetType;
import static org.bytedeco.cuda.global.cudart.cudaGraphNodeTypeKernel;
import static org.bytedeco.cuda.global.cudart.cudaGraphNodeTypeMemcpy;
import static org.bytedeco.cuda.global.cudart.cudaGraphNodeTypeMemset;
import static org.bytedeco.cuda.global.cudart.cudaGraphRemoveDependencies_v2;

import dev.sdrt.runtime.profile.NodeProfile;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUDA_KERNEL_NODE_PARAMS_v2;
import org.bytedeco.cuda.cudart.CUgraphNode_st;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.bytedeco.cuda.cudart.cudaGraphEdgeData;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * Times every kernel of a piece of GPU work, inside one process and without external tools: the
 * work is captured as a CUDA graph, an event is recorded after every node of the graph, and the
 * graph is replayed; each node's duration is the time from its predecessors' events to its own
 * ({@link KernelTimeline}). TensorRT's per-layer profiler interface cannot be implemented from Java
 * with the bytedeco bindings, and kernels are what the GPU runs anyway: their names say whether a
 * convolution ran in int8 or fp16 and how much time went to reformatting ({@link KernelClass}).
 *
 * <p>The events serialize what ran side by side and cost a few microseconds each, so the sum of
 * the nodes exceeds the plain replay; the profile reports both. The bindings return graph nodes one
 * at a time, so the graph is walked from a single root (a one-byte fill queued before the work),
 * taking its edges off one by one ({@link GraphTopology}), then rebuilt with an event between each
 * node and its dependents.
 */
public final class KernelProfiler {

    private static final int WARMUP_REPLAYS = 3;

    private KernelProfiler() {}

    /**
     * Profiles what {@code work} queues on {@code stream}; it must be capturable (no
     * synchronization, no allocation) and have its inputs in place. {@code runs} instrumented replays
     * give the medians.
     */
    public static KernelProfile profile(CudaStream stream, CudaGraph.Recording work, int runs) {
        if (runs < 1) {
            throw new IllegalArgumentException("runs must be at least 1, got " + runs);
        }
        try (DeviceBuffer marker = DeviceBuffer.allocate(1, "kernel profile root marker")) {
            CUgraph_st template = CudaGraph.captureTemplate(stream, s -> {
                marker.fillAsync(0, s);
                work.enqueue(s);
            });
            try {
                double plainMillis;
                try (CudaGraph plain = CudaGraph.instantiate(template)) {
                    plainMillis = medianReplayMillis(plain, stream, runs);
                }
                return profileInstrumented(template, stream, runs, plainMillis);
            } finally {
                CudaGraph.destroy(template);
            }
        }
    }

    private static KernelProfile profileInstrumented(CUgraph_st template, CudaStream stream, int runs, double plainMillis) {
        List<CUgraphNode_st> nodes = new ArrayList<>();
        int[][] predecessors;
        try (CudaGraphEdges edges = new CudaGraphEdges(template)) {
            GraphTopology<Long> topology = GraphTopology.detach(edges);
            topology.nodes().forEach(address -> nodes.add(edges.handle(address)));
            predecessors = topology.predecessors();
        }
        int count = nodes.size();
        List<CudaEvent> events = new ArrayList<>(count);
        try {
            List<CUgraphNode_st> eventNodes = new ArrayList<>(count);
            for (CUgraphNode_st node : nodes) {
                CudaEvent event = CudaEvent.create();
                events.add(event);
                CUgraphNode_st eventNode = new CUgraphNode_st();
                Cuda.check(cudaGraphAddEventRecordNode(eventNode, template, node, 1, event.handle()),
                        "cudaGraphAddEventRecordNode");
                eventNodes.add(eventNode);
            }
            // Each former edge u -> v becomes u -> event(u) -> v.
            for (int node = 0; node < count; node++) {
                for (int predecessor : predecessors[node]) {
                    Cuda.check(cudaGraphAddDependencies(template, eventNodes.get(predecessor), nodes.get(node), 1),
                            "cudaGraphAddDependencies");
                }
            }
            double[][] durations = new double[runs][];
            double[] totals = new double[runs];
            try (CudaGraph instrumented = CudaGraph.instantiate(template)) {
                for (int i = 0; i < WARMUP_REPLAYS; i++) {
                    instrumented.launch(stream);
                }
                float[] elapsed = {0};
                for (int run = 0; run < runs; run++) {
                    instrumented.launch(stream);
                    stream.synchronize();
                    double[] completion = new double[count];
                    for (int node = 1; node < count; node++) {
                        Cuda.check(cudaEventElapsedTime(elapsed, events.get(0).handle(), events.get(node).handle()),
                                "cudaEventElapsedTime");
                        completion[node] = elapsed[0];
                        totals[run] = Math.max(totals[run], elapsed[0]);
                    }
                    durations[run] = KernelTimeline.durations(predecessors, completion);
                }
            }
            // Node 0 is the marker fill; the profile is of the work alone.
            List<String> names = new ArrayList<>(count - 1);
            List<String> kinds = new ArrayList<>(count - 1);
            for (int node = 1; node < count; node++) {
                String name = describe(nodes.get(node));
                names.add(name);
                kinds.add((name.equals("memset") || name.equals("memcpy") ? KernelClass.ofMemoryNode() : KernelClass.ofKernel(name)).label());
            }
            double[][] workDurations = new double[runs][];
            for (int run = 0; run < runs; run++) {
                workDurations[run] = java.util.Arrays.copyOfRange(durations[run], 1, count);
            }
            return new KernelProfile(NodeProfile.fromRuns(names, kinds, workDurations), plainMillis, NodeProfile.median(totals));
        } finally {
            events.forEach(CudaEvent::close);
        }
    }

    private static double medianReplayMillis(CudaGraph graph, CudaStream stream, int runs) {
        try (CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
            for (int i = 0; i < WARMUP_REPLAYS; i++) {
                graph.launch(stream);
            }
            double[] millis = new double[runs];
            for (int run = 0; run < runs; run++) {
                start.record(stream);
                graph.launch(stream);
                end.record(stream);
                millis[run] = end.elapsedMillisSince(start);
            }
            return NodeProfile.median(millis);
        }
    }

    /** A kernel's name, or the kind of a non-kernel node. */
    private static String describe(CUgraphNode_st node) {
        int[] type = {0};
        Cuda.check(cudaGraphNodeGetType(node, type), "cudaGraphNodeGetType");
        if (type[0] == cudaGraphNodeTypeMemset) {
            return "memset";
        }
        if (type[0] == cudaGraphNodeTypeMemcpy) {
            return "memcpy";
        }
        if (type[0] != cudaGraphNodeTypeKernel) {
            return "graph node of type " + type[0];
        }
        CUDA_KERNEL_NODE_PARAMS_v2 params = new CUDA_KERNEL_NODE_PARAMS_v2();
        try (PointerPointer<BytePointer> name = new PointerPointer<>(1)) {
            int status = cuGraphKernelNodeGetParams(node, params);
            if (status == CUDA_SUCCESS && params.func() != null && !params.func().isNull()) {
                status = cuFuncGetName(name, params.func());
            } else if (status == CUDA_SUCCESS && params.kern() != null && !params.kern().isNull()) {
                status = cuKernelGetName(name, params.kern());
            }
            if (status != CUDA_SUCCESS || name.get(0) == null) {
                return "kernel (name unavailable, CUresult " + status + ")";
            }
            return new BytePointer(name.get(0)).getString();
        } finally {
            params.close();
        }
    }

    /**
     * The CUDA graph's edges, one dependent at a time. Node handles are compared by address (each
     * query returns a new Java object for the same node); the edge data of the dependent last
     * returned is kept for its removal, so that edges with non-default data come off too.
     */
    private static final class CudaGraphEdges implements GraphTopology.Edges<Long>, AutoCloseable {
        private final CUgraph_st graph;
        private final Map<Long, CUgraphNode_st> handles = new HashMap<>();
        private final SizeTPointer count = new SizeTPointer(1);
        private final cudaGraphEdgeData edge = new cudaGraphEdgeData();

        CudaGraphEdges(CUgraph_st graph) {
            this.graph = graph;
        }

        CUgraphNode_st handle(long address) {
            return handles.get(address);
        }

        @Override
        public Long root() {
            Cuda.check(cudaGraphGetRootNodes(graph, null, count), "cudaGraphGetRootNodes");
            if (count.get() != 1) {
                throw new IllegalStateException("expected the profile's marker fill as the only root of the "
                        + "captured graph, found " + count.get() + " roots");
            }
            CUgraphNode_st root = new CUgraphNode_st();
            Cuda.check(cudaGraphGetRootNodes(graph, root, count), "cudaGraphGetRootNodes");
            return remember(root);
        }

        @Override
        public Long firstDependent(Long node) {
            CUgraphNode_st dependent = new CUgraphNode_st();
            count.put(1);
            Cuda.check(cudaGraphNodeGetDependentNodes_v2(handles.get(node), dependent, edge, count),
                    "cudaGraphNodeGetDependentNodes");
            return count.get() == 0 || dependent.isNull() ? null : remember(dependent);
        }

        @Override
        public void removeEdge(Long from, Long to) {
            Cuda.check(cudaGraphRemoveDependencies_v2(graph, handles.get(from), handles.get(to), edge, 1),
                    "cudaGraphRemoveDependencies");
        }

        private Long remember(CUgraphNode_st node) {
            handles.putIfAbsent(node.address(), node);
            return node.address();
        }

        @Override
        public void close() {
            count.close();
            edge.close();
        }
    }
}
