package dev.sdrt.cli;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.SaveOptions;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.graphs.passes.PassResult;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Help.Column;
import picocli.CommandLine.Help.TextTable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.UsageMessageSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sdrt optimize IN.onnx --passes SPEC --out OUT.onnx}: rewrites a graph with a pass pipeline. */
@Command(name = "optimize", mixinStandardHelpOptions = true, sortOptions = false, modelTransformer = OptimizeCommand.PassList.class,
        description = {"Rewrites an ONNX graph with a pipeline of passes and prints what each changed.",
            "SPEC: passes separated by commas, options as name:key=value (lists of values joined by |), e.g."
                + " cleanup,fuse-qkv,tome:ratio=0.5,fp16."})
final class OptimizeCommand implements Callable<Integer> {

    /**
     * A line of help per pass, by its registered name (PassPipeline's registry holds no
     * descriptions); HelpTest fails for a registered pass that has none here.
     */
    static final Map<String, String> PASS_HELP = Map.of(
            "static-shapes", "NAME=SIZE...: pins symbolic dimensions (sdrt's exports: batch, height and width in latent"
                    + " pixels, sequence) and infers every shape again; tome needs it, and the graph then takes only those sizes",
            "cleanup", "folds shape arithmetic, removes no-op and dead nodes and unused initializers (exact)",
            "fuse-qkv", "one MatMul for the Q, K and V projections of each attention (K and V of cross-attention) (exact)",
            "tome", "ratio=R, max_downsample=D, stride=S, random=true|false: token merging around self-attention (static"
                    + " shapes needed)",
            "fp16", "io=fp16, keep=Op|Op: half precision, keeping normalization statistics and timestep math in float32",
            "bf16", "io=bf16, keep=Op|Op: bfloat16, as fp16 (runs on TensorRT; ONNX Runtime's CPU has no bf16 kernels)",
            "channels-last", "io=nhwc: NHWC between convolutions, cancelling transposes (exact)",
            "qdq", "mode=int8|fp8, scales=FILE (or --scales), skip=REGEX, skip-defaults=false, smoothquant=FILE,"
                    + " weights=quantized|float, ops=Conv|MatMul|Gemm: Q/DQ on the listed ops (default all three; fp8 on"
                    + " TensorRT 10.6 may need ops=MatMul|Gemm) for TensorRT's int8/fp8 kernels; skip adds to the"
                    + " default list (conv_in, conv_out, time and added-condition embeddings, shortcut convs, norm_out,"
                    + " proj_out, and boundary convs), skip-defaults=false keeps only the given patterns");

    /** Adds the list of passes to the help, after the options. */
    static final class PassList implements CommandLine.IModelTransformer {
        private static final String SECTION = "passes";

        @Override
        public CommandSpec transform(CommandSpec spec) {
            List<String> keys = new ArrayList<>(spec.usageMessage().sectionKeys());
            keys.add(keys.indexOf(UsageMessageSpec.SECTION_KEY_OPTION_LIST) + 1, SECTION);
            spec.usageMessage().sectionKeys(keys);
            spec.usageMessage().sectionMap().put(SECTION, PassList::render);
            return spec;
        }

        private static String render(CommandLine.Help help) {
            int nameWidth = 2 + PassPipeline.registeredPasses().stream().mapToInt(String::length).max().orElse(0) + 2;
            TextTable table = TextTable.forColumns(help.colorScheme(), new Column(nameWidth, 2, Column.Overflow.SPAN),
                    new Column(help.commandSpec().usageMessage().width() - nameWidth, 0, Column.Overflow.WRAP));
            for (String pass : PassPipeline.registeredPasses()) {
                table.addRowValues(pass, PASS_HELP.getOrDefault(pass, ""));
            }
            return String.format("%nPasses, in the order SPEC names them, with their options:%n") + table;
        }
    }

    @Parameters(index = "0", paramLabel = "IN.onnx", description = "ONNX model to rewrite")
    Path in;

    @Option(names = "--passes", paramLabel = "SPEC", required = true, description = "pass pipeline, e.g. cleanup,fuse-qkv,fp16 (passes below)")
    String passes;

    @Option(names = "--out", paramLabel = "OUT.onnx", required = true, description = "rewritten model (not the input file)")
    Path out;

    @Option(names = "--scales", paramLabel = "FILE.json", description = "activation scales for qdq (from 'sdrt calibrate')")
    Path scales;

    @Option(names = "--no-check", description = "skip the ONNX checker on the result (it runs before --out is replaced)")
    boolean noCheck;

    @Spec
    CommandSpec spec;

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
        // checked before it replaces --out: a model the checker rejects never overwrites a good one
        model.save(out, SaveOptions.defaults().withCheck(!noCheck));
        log.printf("wrote %s (%s)%n", out, ByteSizes.human(Files.size(out)));
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
