package dev.sdrt.runtime.trt;

/**
 * Turns the completion times of a graph's nodes into each node's own duration. A node can start
 * once its last predecessor has completed, so its duration is its completion time minus the latest
 * completion among its predecessors. On a chain of nodes (one stream) that is exact; where branches
 * run side by side, a node's duration also holds the time it waited for the GPU to be free.
 */
final class KernelTimeline {

    private KernelTimeline() {}

    /**
     * @param predecessors for each node, the indices of the nodes it depends on
     * @param completion   for each node, when it completed, in ms after the graph's common root
     * @return each node's duration in ms, never negative (event timestamps have about half a
     *         microsecond of resolution, so an empty node can appear to end before its predecessor)
     */
    static double[] durations(int[][] predecessors, double[] completion) {
        if (predecessors.length != completion.length) {
            throw new IllegalArgumentException(predecessors.length + " nodes but " + completion.length + " times");
        }
        double[] durations = new double[completion.length];
        for (int node = 0; node < completion.length; node++) {
            double start = 0;
            for (int predecessor : predecessors[node]) {
                start = Math.max(start, completion[predecessor]);
            }
            durations[node] = Math.max(0, completion[node] - start);
        }
        return durations;
    }
}
