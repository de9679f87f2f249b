package dev.sdrt.runtime.profile;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * Where a model's time goes, node by node: the median duration of every timed node (a GPU kernel,
 * an ONNX Runtime node) over several runs, grouped by what the nodes do and by name. The kernel
 * profile of a TensorRT engine and the node profile of an ONNX Runtime session both hold one; plain
 * data, so tests build and print it the same way.
 *
 * @param nodes every timed node, in execution order
 * @param runs  how many runs the medians are taken over
 */
public record NodeProfile(List<Node> nodes, int runs) {

    /** One timed node: its name, its group (a kernel class, an op type) and its median duration. */
    public record Node(String name, String group, double millis) {}

    /** Time and count of a set of nodes. */
    public record Group(String label, int count, double millis) {}

    public NodeProfile {
        nodes = List.copyOf(nodes);
    }

    /** From raw runs: {@code durations[run][node]} in ms, for the nodes named {@code names} in {@code groups}. */
    public static NodeProfile fromRuns(List<String> names, List<String> groups, double[][] durations) {
        if (durations.length == 0) {
            throw new IllegalArgumentException("a profile needs at least one run");
        }
        if (names.size() != groups.size()) {
            throw new IllegalArgumentException(names.size() + " names but " + groups.size() + " groups");
        }
        List<Node> nodes = new ArrayList<>(names.size());
        double[] perRun = new double[durations.length];
        for (int node = 0; node < names.size(); node++) {
            for (int run = 0; run < durations.length; run++) {
                perRun[run] = durations[run][node];
            }
            nodes.add(new Node(names.get(node), groups.get(node), median(perRun)));
        }
        return new NodeProfile(nodes, durations.length);
    }

    /** The median of {@code values} (the mean of the middle two for an even count). */
    public static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int middle = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2.0;
    }

    /** The sum of the nodes' median durations. */
    public double totalMillis() {
        return nodes.stream().mapToDouble(Node::millis).sum();
    }

    /** Nodes grouped by {@link Node#group()}, slowest group first. */
    public List<Group> byGroup() {
        return group(Node::group);
    }

    /** Nodes grouped by name (one kernel launched many times is one row), slowest first. */
    public List<Group> byName() {
        return group(Node::name);
    }

    private List<Group> group(Function<Node, String> key) {
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

    /**
     * Two Markdown tables: time per group (headed {@code groupHeading}) and the {@code top} slowest
     * names (headed {@code nameHeading}), each row with its count, ms and share of the total.
     */
    public String tables(String groupHeading, String nameHeading, int top) {
        double total = totalMillis();
        StringBuilder text = new StringBuilder();
        text.append("| ").append(groupHeading).append(" | nodes | ms | share |\n|---|---:|---:|---:|\n");
        for (Group group : byGroup()) {
            text.append(row(group, total));
        }
        List<Group> names = byName();
        text.append(String.format(Locale.ROOT, "%n| %s (%d of %d distinct) | calls | ms | share |%n|---|---:|---:|---:|%n",
                nameHeading, Math.min(top, names.size()), names.size()));
        names.stream().limit(top).forEach(group -> text.append(row(group, total)));
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
