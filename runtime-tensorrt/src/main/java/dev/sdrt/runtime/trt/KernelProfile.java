package dev.sdrt.runtime.trt;

import dev.sdrt.runtime.profile.NodeProfile;
import java.util.Locale;

/**
 * Where a captured piece of GPU work spends its time: the median duration of every kernel, copy and
 * fill over several replays ({@link NodeProfile}, grouped by {@link KernelClass#label()}), beside the
 * time of the same graph replayed without instrumentation. Made by {@link KernelProfiler}.
 *
 * @param nodes              every timed graph node
 * @param plainReplayMillis  median time of the graph without instrumentation
 * @param instrumentedMillis median time of the instrumented graph (an event after every node)
 */
public record KernelProfile(NodeProfile nodes, double plainReplayMillis, double instrumentedMillis) {

    /** A Markdown report: the totals, the time per kernel class, and the {@code top} slowest kernels. */
    public String toMarkdown(int top) {
        return String.format(Locale.ROOT,
                "%d graph nodes, medians of %d replays. Plain CUDA-graph replay %.3f ms; with an event after "
                        + "every node %.3f ms (the events' cost is spread over the rows below, which sum to %.3f ms).%n%n",
                nodes.nodes().size(), nodes.runs(), plainReplayMillis, instrumentedMillis, nodes.totalMillis())
                + nodes.tables("kernel class", "slowest kernels", top);
    }
}
