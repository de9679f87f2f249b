package dev.sdrt.runtime.ort;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.sdrt.runtime.profile.NodeProfile;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * Where a model's time goes on ONNX Runtime, node by node: its profiler's trace of several runs, as
 * the median time of every node (grouped by op type) beside the median time of a whole run. The
 * gap between the two is ONNX Runtime's own work between nodes, the profiler's bookkeeping
 * included, so whole-run times come from {@code sdrt bench}; this profile says where inside a run
 * the time goes. Large models need warm-up: the SD 1.5 UNet at 64×64 latents ran its first two
 * calls at over twice its steady time on a 2-core machine.
 *
 * @param nodes      every node of the run, in execution order (ONNX Runtime's names: after its own
 *                   fusions, a node may stand for several of the model's)
 * @param runMillis  the kept runs' whole times, in ms
 * @param threads    the intra-op threads the session used (0 when unknown)
 */
public record OrtProfile(NodeProfile nodes, double[] runMillis, int threads) {

    private static final String NODE_SUFFIX = "_kernel_time";

    /**
     * Runs {@code model} {@code warmup + runs} times with the profiler on and keeps the last {@code
     * runs}; {@code inputs} makes the feeds from the session's input specs. The trace goes to a
     * temporary folder that is deleted afterwards.
     */
    public static OrtProfile of(Path model, Function<Map<String, TensorSpec>, Map<String, Tensor>> inputs, int warmup, int runs,
            int threads) throws IOException {
        if (runs < 1 || warmup < 0) {
            throw new IllegalArgumentException("need at least 1 run and no negative warm-up, got " + runs + " and " + warmup);
        }
        Path folder = Files.createTempDirectory("sdrt-ort-profile");
        try (OrtRunner runner = OrtRunner.builder(model).intraOpThreads(threads).profileTo(folder.resolve("trace")).build()) {
            Map<String, Tensor> feeds = inputs.apply(runner.inputs());
            for (int i = 0; i < warmup + runs; i++) {
                runner.run(feeds);
            }
            OrtProfile profile = parse(runner.endProfiling(), warmup);
            return new OrtProfile(profile.nodes(), profile.runMillis(), threads);
        } finally {
            try (Stream<Path> files = Files.walk(folder)) {
                files.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            }
        }
    }

    /** Reads a trace of ONNX Runtime's profiler, leaving out the first {@code skipRuns} runs (warm-up). */
    public static OrtProfile parse(Path trace, int skipRuns) throws IOException {
        JsonArray events;
        try (Reader reader = Files.newBufferedReader(trace)) {
            JsonElement root = JsonParser.parseReader(reader);
            if (!root.isJsonArray()) {
                throw new IOException(trace + " is not an ONNX Runtime profile (expected a JSON array of trace events)");
            }
            events = root.getAsJsonArray();
        } catch (JsonParseException e) {
            throw new IOException(trace + " is not valid JSON: " + e.getMessage(), e);
        }
        List<long[]> runs = new ArrayList<>(); // {start, end} in µs
        List<JsonObject> nodeEvents = new ArrayList<>();
        for (JsonElement element : events) {
            if (!element.isJsonObject()) {
                continue;
            }
            JsonObject event = element.getAsJsonObject();
            String category = string(event, "cat");
            String name = string(event, "name");
            if ("Session".equals(category) && "model_run".equals(name)) {
                long start = event.get("ts").getAsLong();
                runs.add(new long[] {start, start + event.get("dur").getAsLong()});
            } else if ("Node".equals(category) && name != null && name.endsWith(NODE_SUFFIX)) {
                nodeEvents.add(event);
            }
        }
        runs.sort(Comparator.comparingLong(run -> run[0]));
        if (runs.size() <= skipRuns) {
            throw new IOException(trace + " holds " + runs.size() + " runs, not more than the " + skipRuns + " warm-up runs to leave out");
        }
        List<long[]> kept = runs.subList(skipRuns, runs.size());
        nodeEvents.sort(Comparator.comparingLong(event -> event.get("ts").getAsLong()));

        Map<String, Integer> index = new LinkedHashMap<>();
        List<String> groups = new ArrayList<>();
        List<Map<String, Double>> perRun = new ArrayList<>();
        for (int i = 0; i < kept.size(); i++) {
            perRun.add(new HashMap<>());
        }
        for (JsonObject event : nodeEvents) {
            long start = event.get("ts").getAsLong();
            int run = runOf(kept, start);
            if (run < 0) {
                continue; // a warm-up run's node
            }
            String name = string(event, "name");
            name = name.substring(0, name.length() - NODE_SUFFIX.length());
            if (!index.containsKey(name)) {
                index.put(name, index.size());
                JsonObject args = event.has("args") && event.get("args").isJsonObject() ? event.getAsJsonObject("args") : null;
                String op = args == null ? null : string(args, "op_name");
                groups.add(op == null ? "?" : op);
            }
            perRun.get(run).merge(name, event.get("dur").getAsLong() / 1000.0, Double::sum);
        }
        List<String> names = new ArrayList<>(index.keySet());
        double[][] durations = new double[kept.size()][names.size()];
        double[] runMillis = new double[kept.size()];
        for (int run = 0; run < kept.size(); run++) {
            for (int node = 0; node < names.size(); node++) {
                durations[run][node] = perRun.get(run).getOrDefault(names.get(node), 0.0);
            }
            runMillis[run] = (kept.get(run)[1] - kept.get(run)[0]) / 1000.0;
        }
        return new OrtProfile(NodeProfile.fromRuns(names, groups, durations), runMillis, 0);
    }

    private static int runOf(List<long[]> runs, long timestamp) {
        for (int i = 0; i < runs.size(); i++) {
            if (timestamp >= runs.get(i)[0] && timestamp <= runs.get(i)[1]) {
                return i;
            }
        }
        return -1;
    }

    private static String string(JsonObject object, String member) {
        JsonElement value = object.get(member);
        return value == null || !value.isJsonPrimitive() ? null : value.getAsString();
    }

    /** The median time of one whole run, in ms. */
    public double medianRunMillis() {
        return NodeProfile.median(runMillis);
    }

    /** A Markdown report: the run time, the time per op type, and the {@code top} slowest nodes. */
    public String toMarkdown(int top) {
        return String.format(Locale.ROOT,
                "%d nodes, medians of %d runs on ONNX Runtime (CPU%s). One run takes %.3f ms; its nodes sum to %.3f ms "
                        + "(the rest is ONNX Runtime's work between nodes, its profiler's bookkeeping included: a run "
                        + "without the profiler is faster).%n%n",
                nodes.nodes().size(), runMillis.length, threads > 0 ? ", " + threads + " threads" : "", medianRunMillis(),
                nodes.totalMillis())
                + nodes.tables("op type", "slowest nodes", top);
    }
}
