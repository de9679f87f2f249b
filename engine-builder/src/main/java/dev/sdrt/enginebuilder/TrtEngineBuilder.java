package dev.sdrt.enginebuilder;

import static org.bytedeco.tensorrt.global.nvinfer.createInferBuilder;
import static org.bytedeco.tensorrt.global.nvonnxparser.createParser;

import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtDataTypes;
import dev.sdrt.runtime.trt.TrtDims;
import dev.sdrt.runtime.trt.TrtLogger;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.logging.Logger;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.tensorrt.global.nvinfer.BuilderFlag;
import org.bytedeco.tensorrt.global.nvinfer.MemoryPoolType;
import org.bytedeco.tensorrt.global.nvinfer.NetworkDefinitionCreationFlag;
import org.bytedeco.tensorrt.global.nvinfer.OptProfileSelector;
import org.bytedeco.tensorrt.nvinfer.IBuilder;
import org.bytedeco.tensorrt.nvinfer.IBuilderConfig;
import org.bytedeco.tensorrt.nvinfer.IHostMemory;
import org.bytedeco.tensorrt.nvinfer.ILogger;
import org.bytedeco.tensorrt.nvinfer.INetworkDefinition;
import org.bytedeco.tensorrt.nvinfer.IOptimizationProfile;
import org.bytedeco.tensorrt.nvinfer.ITensor;
import org.bytedeco.tensorrt.nvinfer.ITimingCache;
import org.bytedeco.tensorrt.nvonnxparser.IParser;
import org.bytedeco.tensorrt.nvonnxparser.IParserError;

/**
 * Builds a TensorRT engine from an ONNX file: parse (from the file, so external weights resolve beside
 * it), strongly typed network (precision is what the graph says, decided by sdrt's passes), one
 * optimization profile, builder optimization level, workspace limit, timing cache, refit.
 *
 * <p>The native builder objects are not freed after a build (the bytedeco 10.6 bindings cannot delete
 * TensorRT objects, see {@code TrtEngine}), so a process should build a handful of engines, not
 * thousands; the CLI builds one per run.
 */
public final class TrtEngineBuilder implements EngineCache.Backend {

    private static final Logger LOG = Logger.getLogger(TrtEngineBuilder.class.getName());

    static final String PHASE_PARSE = "Parsing ONNX";
    static final String PHASE_BUILD = "Building engine";
    static final String PHASE_WRITE = "Writing engine";

    @Override
    public EngineCache.BuiltEngine build(EngineBuildRequest request, OnnxSummary model, ShapeProfile profile,
            Path planFile, BuildProgress progress) throws IOException {
        TensorRt.requireAvailable();
        TrtLogger logger = TrtLogger.shared();
        logger.clearRecentErrors();
        IBuilder builder = created(createInferBuilder(logger), "createInferBuilder", "a builder");
        INetworkDefinition network = created(builder.createNetworkV2(1 << NetworkDefinitionCreationFlag.kSTRONGLY_TYPED.value),
                "IBuilder.createNetworkV2", "a strongly typed network definition");
        IParser parser = created(createParser(network, logger), "createParser", "an ONNX parser");

        progress.phaseStart(PHASE_PARSE, null, 1);
        parse(parser, request.onnx(), model);
        progress.stepComplete(PHASE_PARSE, 0);
        progress.phaseFinish(PHASE_PARSE);

        IBuilderConfig config = created(builder.createBuilderConfig(), "IBuilder.createBuilderConfig", "a builder config");
        configure(config, request);
        addProfile(builder, config, network, profile);
        ITimingCache timingCache = loadTimingCache(config, request.timingCache());

        int layers = network.getNbLayers();
        LogBuildProgress layerProgress = new LogBuildProgress(progress, PHASE_BUILD, layers);
        progress.phaseStart(PHASE_BUILD, null, layers);
        logger.clearRecentErrors();
        logger.addListener(layerProgress);
        IHostMemory plan;
        try {
            plan = builder.buildSerializedNetwork(network, config);
        } finally {
            logger.removeListener(layerProgress);
        }
        if (plan == null || plan.isNull() || plan.size() == 0) {
            throw buildFailure(request, model, logger.recentErrors());
        }
        if (layers > 0) {
            progress.stepComplete(PHASE_BUILD, layers - 1);
        }
        progress.phaseFinish(PHASE_BUILD);

        progress.phaseStart(PHASE_WRITE, null, 1);
        NativeFiles.write(plan.data(), plan.size(), planFile);
        if (request.timingCache() != null && timingCache != null) {
            saveTimingCache(config, request.timingCache());
        }
        progress.stepComplete(PHASE_WRITE, 0);
        progress.phaseFinish(PHASE_WRITE);
        return new EngineCache.BuiltEngine(describe(network, true), describe(network, false));
    }

    /**
     * {@code object}, unless {@code call} returned null: TensorRT's way of failing to create one,
     * which would otherwise crash the JVM in the first call on it.
     */
    private static <T extends Pointer> T created(T object, String call, String what) {
        if (object == null || object.isNull()) {
            throw new EngineBuildException("TensorRT could not create " + what + ": " + call + " returned null", null, null,
                    TrtLogger.shared().recentErrors());
        }
        return object;
    }

    private static void parse(IParser parser, Path onnx, OnnxSummary model) {
        // parseFromFile, not parse(bytes): the parser then finds external data files beside the model.
        boolean parsed = parser.parseFromFile(onnx.toAbsolutePath().toString(), ILogger.Severity.kWARNING.value);
        if (parsed) {
            return;
        }
        List<String> problems = new ArrayList<>();
        String firstNode = null;
        String firstOp = null;
        for (int i = 0; i < parser.getNbErrors(); i++) {
            IParserError error = parser.getError(i);
            String node = error.nodeName();
            String op = error.nodeOperator();
            if (op == null || op.isEmpty()) {
                op = node == null ? null : model.nodeOps().get(node);
            }
            if (firstNode == null && node != null && !node.isEmpty()) {
                firstNode = node;
                firstOp = op;
            }
            problems.add(String.format("node %d '%s' (%s): %s [%s in %s]", error.node(),
                    node == null ? "" : node, op == null ? "?" : op, error.desc(), error.code(), error.func()));
        }
        throw new EngineBuildException("TensorRT could not parse " + onnx
                + (firstNode == null ? "" : " at ONNX node '" + firstNode + "' (" + firstOp + ")")
                + ": " + String.join("; ", problems), firstNode, firstOp, TrtLogger.shared().recentErrors());
    }

    private static void configure(IBuilderConfig config, EngineBuildRequest request) {
        config.setBuilderOptimizationLevel(request.optLevel());
        if (request.workspaceBytes() > 0) {
            config.setMemoryPoolLimit(MemoryPoolType.kWORKSPACE, request.workspaceBytes());
        }
        if (request.refit()) {
            config.setFlag(BuilderFlag.kREFIT);
        }
        if (!request.tf32()) {
            // TF32 is on by default and rounds float32 matmul/conv inputs to 10 mantissa bits.
            config.clearFlag(BuilderFlag.kTF32);
        }
    }

    /** Adds the profile, checking that it covers exactly the network's inputs. */
    private static void addProfile(IBuilder builder, IBuilderConfig config, INetworkDefinition network,
            ShapeProfile profile) {
        IOptimizationProfile optimizationProfile = created(builder.createOptimizationProfile(),
                "IBuilder.createOptimizationProfile", "an optimization profile");
        boolean anyDynamic = false;
        for (int i = 0; i < network.getNbInputs(); i++) {
            ITensor input = network.getInput(i);
            String name = input.getName();
            if (input.isShapeTensor()) {
                throw new EngineBuildException("input '" + name + "' is a shape tensor; sdrt builds only"
                        + " engines whose inputs are data tensors", null, null, List.of());
            }
            long[] declared = TrtDims.toArray(input.getDimensions(), name);
            InputShapes shapes = profile.inputs().get(name);
            if (shapes == null) {
                throw new ProfileException("TensorRT's network has input '" + name + "' ("
                        + Arrays.toString(declared) + ") but the profile covers only " + profile.inputs().keySet());
            }
            for (long dim : declared) {
                anyDynamic |= dim < 0;
            }
            setDimensions(optimizationProfile, name, declared, OptProfileSelector.kMIN, shapes.min());
            setDimensions(optimizationProfile, name, declared, OptProfileSelector.kOPT, shapes.opt());
            setDimensions(optimizationProfile, name, declared, OptProfileSelector.kMAX, shapes.max());
        }
        if (!anyDynamic) {
            return; // a static network needs no profile
        }
        if (!optimizationProfile.isValid() || config.addOptimizationProfile(optimizationProfile) < 0) {
            throw new ProfileException("TensorRT rejected the optimization profile " + profile.inputs()
                    + "; TensorRT said: " + String.join(" | ", TrtLogger.shared().recentErrors()));
        }
    }

    /**
     * One of an input's min, opt and max shapes. TensorRT answers false when it finds the dims
     * inconsistent (a rank other than that of the dims set before for the input, a negative size);
     * going on, the build would fail later with a vaguer message, or use a profile other than asked.
     */
    private static void setDimensions(IOptimizationProfile optimizationProfile, String name, long[] declared,
            OptProfileSelector selector, long[] shape) {
        if (!optimizationProfile.setDimensions(name, selector, TrtDims.of(shape))) {
            String which = selector.name().substring(1).toLowerCase(Locale.ROOT); // kMIN -> min
            throw new ProfileException("TensorRT rejected " + Arrays.toString(shape) + " as the " + which
                    + " shape of input '" + name + "' (declared " + Arrays.toString(declared)
                    + ") in IOptimizationProfile.setDimensions; TensorRT said: "
                    + String.join(" | ", TrtLogger.shared().recentErrors()));
        }
    }

    /** Creates the config's timing cache, seeded from {@code file} when it exists and TensorRT accepts it. */
    private static ITimingCache loadTimingCache(IBuilderConfig config, Path file) throws IOException {
        if (file == null) {
            return null;
        }
        ITimingCache cache = null;
        if (Files.isRegularFile(file) && Files.size(file) > 0) {
            try (BytePointer bytes = NativeFiles.read(file)) {
                cache = config.createTimingCache(bytes, Files.size(file));
            }
            if (cache == null || cache.isNull()) {
                LOG.warning("TensorRT did not accept the timing cache " + file + " (another TensorRT version?);"
                        + " starting a new one");
                cache = null;
            }
        }
        if (cache == null) {
            cache = config.createTimingCache(new Pointer(), 0);
            if (cache == null || cache.isNull()) {
                LOG.warning("TensorRT could not create an empty timing cache (IBuilderConfig.createTimingCache returned"
                        + " null); building without one, " + file + " not updated");
                return null;
            }
        }
        // ignoreMismatch = false: a cache from another GPU would give wrong timings, so TensorRT rejects it.
        if (!config.setTimingCache(cache, false)) {
            LOG.warning("TensorRT did not use the timing cache " + file + "; building without it");
            return null;
        }
        return cache;
    }

    private static void saveTimingCache(IBuilderConfig config, Path file) throws IOException {
        ITimingCache cache = config.getTimingCache();
        if (cache == null || cache.isNull()) {
            return;
        }
        IHostMemory serialized = cache.serialize();
        if (serialized == null || serialized.isNull()) {
            LOG.warning("TensorRT could not serialize the timing cache; " + file + " not updated");
            return;
        }
        NativeFiles.write(serialized.data(), serialized.size(), file);
    }

    private static EngineBuildException buildFailure(EngineBuildRequest request, OnnxSummary model,
            List<String> errors) {
        Optional<FailureLocator.Location> location = FailureLocator.locate(errors, model.nodeOps());
        StringBuilder message = new StringBuilder("TensorRT could not build an engine from " + request.onnx());
        location.ifPresent(l -> message.append(" at ").append(l));
        message.append(errors.isEmpty() ? " (TensorRT logged no error)" : "; TensorRT said:");
        for (String error : errors) {
            message.append("\n  ").append(error);
        }
        return new EngineBuildException(message.toString(), location.map(FailureLocator.Location::nodeName).orElse(null),
                location.map(FailureLocator.Location::opType).orElse(null), errors);
    }

    private static List<TensorDescription> describe(INetworkDefinition network, boolean inputs) {
        List<TensorDescription> list = new ArrayList<>();
        int count = inputs ? network.getNbInputs() : network.getNbOutputs();
        for (int i = 0; i < count; i++) {
            ITensor tensor = inputs ? network.getInput(i) : network.getOutput(i);
            list.add(new TensorDescription(tensor.getName(), TrtDataTypes.name(tensor.getType()),
                    TrtDims.toArray(tensor.getDimensions(), tensor.getName())));
        }
        return list;
    }
}
