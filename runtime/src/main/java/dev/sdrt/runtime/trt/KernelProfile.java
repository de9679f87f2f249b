package dev.sdrt.runtime.trt;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where a captured piece of GPU work spends its time, node by node: the median duration of every
 * kernel, copy and fill over several replays, grouped by what the kernels do ({@link KernelClass})
 * and by kernel name. Made by {@link KernelProfiler}; plain data, so it is built and printed the same
 * way in tests.
 *
 * @param nodes               every timed node, in graph order
 * @param runs                how many instrumented replays the medians are taken over
 * @param plainReplayMillis   median time of the same graph without instrumentation
 * @param instrumentedMillis  median time of the instrumented graph (an event after every node)
 */
public record KernelProfile(List<Node> nodes, int runs, double plainReplayMillis, double instrumentedMillis) {

    /** One graph node: a kernel's name (or "memset"/"memcpy"), its class and median duration. */
    public record Node(String name, KernelClass kind, double millis) {}

    /** Time and count of a group of nodes. */
    public record Group(String label, int count, double millis) {}

    public KernelProfile {
        nodes = List.copyOf(nodes);
    }

    /**
     * Builds a profile from raw replays: {@code durations[run][node]} in ms.
     */
    public static KernelProfile fromRuns(List<String> names, List<KernelClass> kinds, double[][] durations,
            double plainReplayMillis, double instrumentedMillis) {
        if (durations.length == 0) {
            throw new IllegalArgumentException("a profile needs at least one run");
        }
        List<Node> nodes = new ArrayList<>(names.size());
        double[] perRun = new double[durations.length];
        for (int node = 0; node < names.size(); node++) {
            for (int run = 0; run < durations.length; run++) {
                perRun[run] = durations[run][node];
            }
            nodes.add(new Node(names.get(node), kinds.get(node), median(perRun)));
        }
        return new KernelProfile(nodes, durations.length, plainReplayMillis, instrumentedMillis);
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int middle = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2.0;
    }

    /** The sum of the nodes' median durations. */
    public double totalMillis() {
        return nodes.stream().mapToDouble(Node::millis).sum();
    }

    /** Nodes grouped by {@link KernelClass#label()}, slowest group first. */
    public List<Group> byClass() {
        return group(node -> node.kind().label());
    }

    /** Nodes grouped by name (one kernel launched many times is one row), slowest first. */
    public List<Group> byName() {
        return group(Node::name);
    }

    private List<Group> group(java.util.function.Function<Node, String> key) {
        Map<String, double[]> sums = new LinkedHashMap<>();
        for (Node node : nodes) {
            double[] sum = sums.computeIfAbsent(key.apply(node), k -> new double[2]);
            sum[0]++;
            sum[1] += node.millis();
        }
        List<Group> groups = new ArrayList<>();
        sums.forEach((label, sum) -> groups.add(new Group(label, (int) sum[0], sum[1])));
        groups.sort(Comparator.comparingDouble(Group::millis).reversed());
        return groups;
    }

    /** A Markdown report: the totals, the time per kernel class, and the {@code top} slowest kernels. */
    public String toMarkdown(int top) {
        double total = totalMillis();
        StringBuilder text = new StringBuilder();
        text.append(String.format(Locale.ROOT,
                "%d graph nodes, medians of %d replays. Plain CUDA-graph replay %.3f ms; with an event after "
                        + "every node %.3f ms (the events' cost is spread over the rows below, which sum to %.3f ms).%n%n",
                nodes.size(), runs, plainReplayMillis, instrumentedMillis, total));
        text.append("| kernel class | nodes | ms | share |\n|---|---:|---:|---:|\n");
        for (Group group : byClass()) {
            text.append(row(group, total));
        }
        text.append(String.format(Locale.ROOT, "%n| slowest kernels (of %d distinct) | calls | ms | share |%n|---|---:|---:|---:|%n",
                byName().size()));
        byName().stream().limit(top).forEach(group -> text.append(row(group, total)));
        return text.toString();
    }

    private static String row(Group group, double total) {
        return String.format(Locale.ROOT, "| %s | %d | %.3f | %.1f%% |%n", shorten(group.label()), group.count(),
                group.millis(), total > 0 ? 100 * group.millis() / total : 0);
    }

    /** Kernel names can run to hundreds of characters of template arguments; a table needs the start. */
    static String shorten(String name) {
        String escaped = name.replace("|", "\\|");
        return escaped.length() <= 110 ? escaped : escaped.substring(0, 107) + "...";
    }
}
