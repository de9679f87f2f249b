package dev.sdrt.cli;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.analysis.AttentionFinder;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Value;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sdrt inspect MODEL.onnx}: what a model takes, gives and contains. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Shows a model's inputs and outputs, op histogram, parameter count, opset, attention blocks and external data files.")
final class InspectCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "MODEL.onnx", description = "ONNX model file")
    Path model;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        OnnxModel m = OnnxModel.load(model);
        Graph g = m.graph();
        PrintWriter out = spec.commandLine().getOut();
        out.printf("model:      %s%n", model);
        out.printf("producer:   %s, IR version %d%n", m.producerName().isEmpty() ? "(unknown)" : m.producerName(), m.irVersion());
        out.printf("opset:      %s%n", m.opsetImports().entrySet().stream()
                .map(e -> (e.getKey().isEmpty() ? "ai.onnx" : e.getKey()) + " " + e.getValue()).collect(Collectors.joining(", ")));
        out.println("inputs:");
        for (Value v : g.inputs()) {
            out.printf("  %-24s %s%n", v.name(), describe(v));
        }
        out.println("outputs:");
        for (Value v : g.outputs()) {
            out.printf("  %-24s %s%n", v.name(), describe(v));
        }
        long params = g.parameterCount();
        long bytes = g.initializers().stream().mapToLong(v -> v.constant().byteSize()).sum();
        out.printf("parameters: %,d in %,d initializers (%s)%n", params, g.initializers().size(), ByteSizes.human(bytes));
        List<AttentionFinder.Attention> attention = AttentionFinder.find(g);
        Map<AttentionFinder.Kind, Long> kinds = attention.stream()
                .collect(Collectors.groupingBy(AttentionFinder.Attention::kind, java.util.TreeMap::new, Collectors.counting()));
        out.printf("attention:  %d blocks%s%n", attention.size(), kinds.isEmpty() ? ""
                : " (" + kinds.entrySet().stream().map(e -> e.getValue() + " " + e.getKey().name().toLowerCase())
                        .collect(Collectors.joining(", ")) + ")");
        if (m.externalDataFiles().isEmpty()) {
            out.println("external data: none (weights inside the model file)");
        } else {
            out.println("external data:");
            for (Path f : m.externalDataFiles()) {
                out.printf("  %s (%s)%n", f.getFileName(), ByteSizes.human(Files.size(f)));
            }
        }
        out.printf("nodes:      %d%n", g.nodes().size());
        g.opHistogram().entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
                .forEach(e -> out.printf("  %-28s %6d%n", e.getKey(), e.getValue()));
        out.flush();
        return 0;
    }

    private static String describe(Value v) {
        String type = v.type() == null ? "?" : v.type().name().toLowerCase();
        return type + " " + (v.shape() == null ? "[?]" : v.shape().toString());
    }
}
