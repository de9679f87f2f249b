package dev.sdrt.enginebuilder;

import dev.sdrt.runtime.trt.TensorRt;
import dev.sdrt.runtime.trt.TrtEngine;
import dev.sdrt.runtime.trt.TrtTensorInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code sdrt engine-info ENGINE.plan} shows: the manifest (source, passes, precision, profiles,
 * I/O, TensorRT version, GPU, build options and time) and, when this machine has a GPU and the engine
 * was built for it, what the loaded engine itself reports (activation memory, I/O, profiles).
 */
public final class EngineInfo {

    private EngineInfo() {}

    /** The description, loading the engine when this machine can (GPU present and matching). */
    public static String describe(Path engine) throws IOException {
        BuildEnvironment here = TensorRt.isAvailable() ? BuildEnvironment.detect() : null;
        return describe(engine, here);
    }

    /**
     * The description; {@code here} is this machine, or null when it has no usable GPU (then only the
     * manifest is shown).
     */
    public static String describe(Path engine, BuildEnvironment here) throws IOException {
        EngineManifest m = EngineManifest.readFor(engine);
        StringBuilder out = new StringBuilder();
        line(out, "engine", engine + " (" + formatBytes(Files.size(engine)) + ")");
        line(out, "manifest", EngineManifest.pathFor(engine).toString());
        line(out, "built", m.createdAt() + " by sdrt " + m.sdrtVersion() + " in "
                + String.format(Locale.ROOT, "%.1f s", m.buildSeconds()));
        line(out, "source", m.onnxPath() + " (sha256 " + m.onnx().sha256() + ", " + formatBytes(m.onnx().bytes()) + ")");
        for (FileHash data : m.externalData()) {
            line(out, "  weights", data.file() + " (sha256 " + data.sha256() + ", " + formatBytes(data.bytes()) + ")");
        }
        line(out, "passes", m.passSpec().isEmpty() ? "(none)" : m.passSpec());
        line(out, "precision", m.precision());
        line(out, "tensorrt", m.tensorRtVersion());
        line(out, "gpu", m.gpuName() + " (compute capability " + m.computeCapability() + ")");
        BuildOptions o = m.buildOptions();
        line(out, "options", "opt level " + o.optLevel()
                + ", workspace " + (o.workspaceBytes() == 0 ? "TensorRT default" : formatBytes(o.workspaceBytes()))
                + ", refit " + yesNo(o.refit()) + ", tf32 " + yesNo(o.tf32())
                + (o.staticShapes() ? ", static shapes" : ", dynamic shapes")
                + (o.stronglyTyped() ? ", strongly typed" : ""));
        for (int p = 0; p < m.profiles().size(); p++) {
            for (Map.Entry<String, InputShapes> input : m.profiles().get(p).entrySet()) {
                line(out, "profile " + p, input.getKey() + " " + input.getValue());
            }
        }
        describeTensors(out, "input", m.inputs());
        describeTensors(out, "output", m.outputs());
        line(out, "cache key", m.cacheKey());
        if (here == null) {
            line(out, "device", "no GPU or TensorRT here (" + TensorRt.unavailableReason() + "): manifest only");
            return out.toString();
        }
        try {
            EngineCache.verifyLoadable(engine, here);
        } catch (EngineMismatchException e) {
            line(out, "device", "not loadable here: " + e.getMessage());
            return out.toString();
        }
        try (TrtEngine loaded = TrtEngine.load(engine)) {
            line(out, "device memory", formatBytes(loaded.deviceMemorySize()) + " of activations per execution context");
            line(out, "refittable", yesNo(loaded.isRefittable()));
            line(out, "profiles", Integer.toString(loaded.profileCount()));
            for (TrtTensorInfo tensor : loaded.tensors()) {
                line(out, "loaded", tensor.toString());
            }
        }
        return out.toString();
    }

    private static void describeTensors(StringBuilder out, String label, List<TensorDescription> tensors) {
        for (TensorDescription tensor : tensors) {
            line(out, label, tensor.toString());
        }
    }

    private static void line(StringBuilder out, String label, String value) {
        out.append(String.format(Locale.ROOT, "%-14s %s%n", label, value));
    }

    private static String yesNo(boolean value) {
        return value ? "yes" : "no";
    }

    /** "1.74 GB", "512.0 MB", "900 bytes" (decimal units, as file sizes are usually quoted). */
    public static String formatBytes(long bytes) {
        if (bytes < 1000) {
            return bytes + " bytes";
        }
        if (bytes < 1_000_000) {
            return String.format(Locale.ROOT, "%.1f kB", bytes / 1e3);
        }
        if (bytes < 1_000_000_000) {
            return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
        }
        return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
    }
}
