package dev.sdrt.cli;

import dev.sdrt.graphs.OnnxChecker;
import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.graphs.passes.PassResult;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sdrt optimize IN.onnx --passes SPEC --out OUT.onnx}: rewrites a graph with a pass pipeline. */
@Command(name = "optimize", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Rewrites an ONNX graph with a pipeline of passes and prints what each changed.",
            "SPEC: passes separated by commas, options as name:key=value, e.g. cleanup,fuse-qkv,tome:ratio=0.5,fp16"})
final class OptimizeCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "IN.onnx")
    Path in;

    @Option(names = "--passes", paramLabel = "SPEC", required = true, description = "pass pipeline, e.g. cleanup,fuse-qkv,fp16")
    String passes;

    @Option(names = "--out", paramLabel = "OUT.onnx", required = true)
    Path out;

    @Option(names = "--scales", paramLabel = "FILE.json", description = "activation scales for qdq (from 'sdrt calibrate')")
    Path scales;

    @Option(names = "--no-check", description = "skip the ONNX checker on the result")
    boolean noCheck;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PassPipeline pipeline = PassPipeline.parse(withScales(passes, scales));
        if (in.toAbsolutePath().normalize().equals(out.toAbsolutePath().normalize())) {
            throw new IllegalArgumentException("--out must differ from the input model");
        }
        PrintWriter log = spec.commandLine().getOut();
        OnnxModel model = OnnxModel.load(in);
        List<PassResult> results = pipeline.run(model);
        log.print(PassPipeline.summary(results));
        model.save(out);
        if (!noCheck) {
            OnnxChecker.check(out);
        }
        log.printf("wrote %s (%s)%n", out, InspectCommand.human(Files.size(out)));
        log.flush();
        return 0;
    }

    /** Hands --scales to every qdq pass in the spec that does not name its own scales file. */
    static String withScales(String spec, Path scales) {
        if (scales == null) {
            return spec;
        }
        List<String> parts = new ArrayList<>();
        boolean used = false;
        for (String pass : spec.split(",")) {
            String p = pass.trim();
            if ((p.equals("qdq") || p.startsWith("qdq:")) && !p.contains("scales=")) {
                p = p + ":scales=" + scales;
                used = true;
            }
            parts.add(p);
        }
        if (!used) {
            throw new IllegalArgumentException("--scales is only used by the qdq pass, which the spec does not contain");
        }
        return String.join(",", parts);
    }
}
