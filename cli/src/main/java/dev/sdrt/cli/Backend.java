package dev.sdrt.cli;

import java.util.Locale;
import picocli.CommandLine;

/**
 * Where the commands that sample ({@code generate}, {@code bench}, {@code calibrate}) run the
 * denoising loop: the {@code --backend} option's one type, parsed by {@link Converter} and
 * described by {@link #HELP}.
 */
enum Backend {
    /** ONNX Runtime on the CPU, the host loop. */
    CPU("cpu", "ONNX Runtime CPU"),
    /** The GPU's device loop run on ONNX Runtime on the CPU, for checking it. */
    CPU_LOOP("cpu-loop", "CPU loop device"),
    /** TensorRT engines on an NVIDIA GPU, the device loop. */
    TENSORRT("tensorrt", "TensorRT");

    /** The --backend help that every command shares; a command may add what its backends do there. */
    static final String HELP = "cpu (ONNX Runtime, the default), tensorrt (an NVIDIA GPU with TensorRT) or cpu-loop"
            + " (the GPU's device loop run on ONNX Runtime, for checking it)";

    private final String id;
    private final String title;

    Backend(String id, String title) {
        this.id = id;
        this.title = title;
    }

    /** The name on the command line and in reports: cpu, cpu-loop or tensorrt. */
    String id() {
        return id;
    }

    /** What runs the loop, in words, e.g. "CPU loop device". */
    String title() {
        return title;
    }

    /** Whether the loop runs on a loop device (tensorrt, cpu-loop) rather than the host loop (cpu). */
    boolean onDevice() {
        return this != CPU;
    }

    /**
     * The backend named {@code text}, in any case; onnxruntime and ort also name cpu, trt names tensorrt.
     *
     * @throws IllegalArgumentException naming the backends there are
     */
    static Backend parse(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "cpu", "onnxruntime", "ort" -> CPU;
            case "cpu-loop" -> CPU_LOOP;
            case "tensorrt", "trt" -> TENSORRT;
            default -> throw new IllegalArgumentException("unknown backend '" + text + "'; backends are cpu, tensorrt and cpu-loop");
        };
    }

    @Override
    public String toString() {
        return id;
    }

    /** The --backend option's converter: {@link #parse}, its refusal as picocli's. */
    static final class Converter implements CommandLine.ITypeConverter<Backend> {
        @Override
        public Backend convert(String value) {
            try {
                return parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
