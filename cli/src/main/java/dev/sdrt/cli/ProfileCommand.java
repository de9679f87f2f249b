package dev.sdrt.cli;

import dev.sdrt.enginebuilder.EngineKernelProfile;
import dev.sdrt.enginebuilder.RandomInputs;
import dev.sdrt.runtime.io.AtomicFiles;
import dev.sdrt.runtime.ort.OrtProfile;
import dev.sdrt.runtime.tensor.Tensor;
import dev.sdrt.runtime.tensor.TensorSpec;
import dev.sdrt.runtime.trt.TensorRt;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code sdrt profile MODEL.onnx | ENGINE.plan}: where one call's time goes. An ONNX model runs on
 * ONNX Runtime (CPU) with its profiler on: time per op type and the slowest nodes. A TensorRT engine
 * runs on the GPU, captured as a CUDA graph with an event after every kernel: time per kernel class
 * (with the precision the kernel names carry) and the slowest kernels.
 */
@Command(name = "profile", mixinStandardHelpOptions = true,
        description = "Times every node of one call: an ONNX model on ONNX Runtime (CPU), grouped by op type; a TensorRT "
                + "engine (.plan, GPU) kernel by kernel, grouped by kernel class and precision.")
final class ProfileCommand implements Callable<Integer> {

    /** Sizes of the symbolic dimensions sdrt's exports use, when --dim does not give them. */
    static final Map<String, Long> DEFAULT_DIMS = Map.of("batch", 2L, "height", 64L, "width", 64L, "sequence", 77L);

    /** Random token ids stay below this, so a small test vocabulary works too (the values do not change the time). */
    static final int TOKEN_ID_BOUND = 256;

    @Parameters(index = "0", paramLabel = "MODEL.onnx|ENGINE.plan",
            description = "an ONNX model (run on ONNX Runtime, CPU) or a TensorRT engine (run on the GPU)")
    Path model;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "20", description = "timed runs the medians are taken over (default: ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "3", description = "untimed runs first, ONNX only (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--top", paramLabel = "N", defaultValue = "25", description = "slowest nodes to list (default: ${DEFAULT-VALUE})")
    int top;

    @Option(names = "--dim", paramLabel = "NAME=SIZE", description = "size of a symbolic dimension of the inputs, ONNX only "
            + "(defaults: batch=2, height=64, width=64 in latent pixels, sequence=77)")
    List<String> dims = List.of();

    @Option(names = "--input", paramLabel = "NAME=FILE.npy", description = "an input's values instead of seeded random ones, ONNX only")
    List<String> inputFiles = List.of();

    @Option(names = "--threads", paramLabel = "N", description = "intra-op threads, ONNX only (default: all cores)")
    Integer threads;

    @Option(names = "--out", paramLabel = "REPORT.md", description = "also write the report to this file")
    Path out;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (runs < 1 || warmup < 0 || top < 0) {
            throw new ParameterException(spec.commandLine(), "--runs must be at least 1, --warmup and --top at least 0");
        }
        if (!Files.isRegularFile(model)) {
            throw new ParameterException(spec.commandLine(), model + (Files.exists(model) ? " is not a file" : " does not exist"));
        }
        boolean engine = model.getFileName().toString().endsWith(".plan");
        String report;
        if (engine) {
            if (!dims.isEmpty() || !inputFiles.isEmpty() || threads != null) {
                throw new ParameterException(spec.commandLine(), "--dim, --input and --threads apply to ONNX models; an engine "
                        + "runs at its optimization profile's opt shapes on seeded random inputs");
            }
            if (!TensorRt.isAvailable()) {
                throw new ParameterException(spec.commandLine(), "profiling an engine runs it, which needs an NVIDIA GPU and "
                        + "TensorRT: " + TensorRt.unavailableReason() + " (profile the .onnx file on ONNX Runtime instead)");
            }
            report = "Kernel profile of " + model + "\n\n" + EngineKernelProfile.of(model, runs).toMarkdown(top);
        } else {
            OrtCpuCheck.requireRunnable(model);
            Map<String, Long> sizes = new LinkedHashMap<>(DEFAULT_DIMS);
            sizes.putAll(parseDims(dims));
            Map<String, Tensor> given = NpyInputs.read(inputFiles);
            int threadCount = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            OrtProfile profile = OrtProfile.of(model, specs -> inputsFor(specs, sizes, given), warmup, runs, threadCount);
            report = "Node profile of " + model + "\n\n" + profile.toMarkdown(top);
        }
        PrintWriter log = spec.commandLine().getOut();
        log.print(report);
        if (out != null) {
            AtomicFiles.write(out, temp -> Files.writeString(temp, report));
            log.println("wrote " + out);
        }
        log.flush();
        return 0;
    }

    static Map<String, Long> parseDims(List<String> specs) {
        Map<String, Long> sizes = new LinkedHashMap<>();
        for (String dim : specs) {
            int eq = dim.indexOf('=');
            try {
                if (eq <= 0) {
                    throw new NumberFormatException();
                }
                long size = Long.parseLong(dim.substring(eq + 1).trim());
                if (size < 1) {
                    throw new NumberFormatException();
                }
                sizes.put(dim.substring(0, eq).trim(), size);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--dim must look like NAME=SIZE with SIZE ≥ 1, e.g. batch=2; got '" + dim + "'");
            }
        }
        return sizes;
    }

    /** The given inputs, and seeded random ones for the rest, their symbolic dimensions sized from {@code sizes}. */
    static Map<String, Tensor> inputsFor(Map<String, TensorSpec> specs, Map<String, Long> sizes, Map<String, Tensor> given) {
        for (String name : given.keySet()) {
            if (!specs.containsKey(name)) {
                throw new IllegalArgumentException("--input " + name + ": the model has no such input; its inputs are " + specs.keySet());
            }
        }
        Random random = new Random(42);
        Map<String, Tensor> inputs = new LinkedHashMap<>();
        for (TensorSpec input : specs.values()) {
            Tensor tensor = given.get(input.name());
            if (tensor == null) {
                long[] shape = input.shapeWith(sizes);
                for (int axis = 0; axis < shape.length; axis++) {
                    if (shape[axis] == TensorSpec.DYNAMIC) {
                        String dim = input.dimensionName(axis);
                        throw new IllegalArgumentException("input " + input.describe() + ": axis " + axis
                                + (dim.isEmpty() ? " is dynamic and unnamed; give the input with --input " + input.name() + "=FILE.npy"
                                        : " is '" + dim + "'; give its size with --dim " + dim + "=SIZE"));
                    }
                }
                tensor = RandomInputs.forInput(input.name(), input.dtype(), shape, random, TOKEN_ID_BOUND);
            }
            inputs.put(input.name(), tensor);
        }
        return inputs;
    }
}
