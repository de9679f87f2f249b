package dev.sdrt.cli;

import dev.sdrt.runtime.ort.OrtRunner;
import dev.sdrt.runtime.tensor.Npy;
import dev.sdrt.runtime.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sdrt run-onnx MODEL.onnx --input NAME=FILE.npy ... --output-dir DIR}: one run on ONNX Runtime CPU. */
@Command(name = "run-onnx", mixinStandardHelpOptions = true,
        description = {"Runs a model once on ONNX Runtime (CPU) and writes every output as DIR/out_<name>.npy.",
            "The model is read and checked first (the ONNX checker; bf16 and fp8 models, which the CPU provider cannot run,"
                + " are refused with what to do instead)."})
final class RunOnnxCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "MODEL.onnx", description = "ONNX model file")
    Path model;

    @Option(names = "--input", paramLabel = "NAME=FILE.npy", required = true,
            description = "an input tensor (repeat for each model input)")
    List<String> inputs;

    @Option(names = "--output-dir", paramLabel = "DIR", required = true, description = "folder for out_<name>.npy files")
    Path outputDir;

    @Option(names = "--threads", paramLabel = "N", description = "intra-op threads (default: all cores)")
    Integer threads;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Map<String, Tensor> feeds = NpyInputs.read(inputs);
        OrtCpuCheck.requireRunnable(model);
        PrintWriter out = this.spec.commandLine().getOut();
        OrtRunner.Builder builder = OrtRunner.builder(model);
        if (threads != null) {
            builder.intraOpThreads(threads);
        }
        try (OrtRunner runner = builder.build()) {
            long start = System.nanoTime();
            Map<String, Tensor> results = runner.run(feeds);
            double ms = (System.nanoTime() - start) / 1e6;
            Files.createDirectories(outputDir);
            for (var e : results.entrySet()) {
                Path file = outputDir.resolve("out_" + e.getKey().replaceAll("[^A-Za-z0-9_.-]", "_") + ".npy");
                Npy.write(file, e.getValue());
                out.printf("%-24s %s %s -> %s%n", e.getKey(), e.getValue().dtype().displayName(),
                        Tensor.formatShape(e.getValue().shape()), file);
            }
            out.printf("ran in %.1f ms%n", ms);
        }
        out.flush();
        return 0;
    }
}
