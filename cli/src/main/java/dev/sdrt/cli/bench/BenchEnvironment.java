package dev.sdrt.cli.bench;

import ai.onnxruntime.OrtEnvironment;
import dev.sdrt.enginebuilder.SdrtVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** The machine and software a CPU bench ran on, for bench.json and the head of bench.md. */
final class BenchEnvironment {
    private BenchEnvironment() {
    }

    static Map<String, String> describe(int threads) {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " (" + System.getProperty("os.arch") + ")");
        env.put("cpu", cpuModel());
        env.put("cores", Integer.toString(Runtime.getRuntime().availableProcessors()));
        env.put("threads", threads > 0 ? Integer.toString(threads) : "all cores");
        env.put("memory", totalMemory());
        env.put("java", System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ", "
                + System.getProperty("java.vendor") + ")");
        env.put("java_max_heap", Runtime.getRuntime().maxMemory() / (1024 * 1024) + " MiB");
        env.put("backend", "ONNX Runtime (CPU execution provider)");
        env.put("onnxruntime", onnxRuntimeVersion());
        env.put("sdrt", SdrtVersion.get());
        env.put("gpu", "none");
        return env;
    }

    /** "model name" from /proc/cpuinfo, or what Java knows. */
    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return "unknown (" + System.getProperty("os.arch") + ")";
    }

    private static String totalMemory() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    long kb = Long.parseLong(line.substring(9).trim().split("\\s+")[0]);
                    return String.format("%.1f GiB", kb / (1024.0 * 1024.0));
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return "unknown";
    }

    private static String onnxRuntimeVersion() {
        try {
            return OrtEnvironment.getEnvironment().getVersion();
        } catch (RuntimeException | LinkageError e) {
            return "unknown";
        }
    }
}
