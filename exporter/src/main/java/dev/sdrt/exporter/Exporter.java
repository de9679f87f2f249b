package dev.sdrt.exporter;

import dev.sdrt.exporter.config.DiffusersConfig;
import dev.sdrt.exporter.models.AutoencoderKLExporter;
import dev.sdrt.exporter.models.ClipTextExporter;
import dev.sdrt.exporter.models.Sd3TransformerExporter;
import dev.sdrt.exporter.models.UNet2DConditionExporter;
import dev.sdrt.exporter.safetensors.SafetensorsFinder;
import dev.sdrt.exporter.safetensors.TensorSource;
import dev.sdrt.exporter.weights.CheckpointWeights;
import dev.sdrt.exporter.weights.RandomWeights;
import dev.sdrt.exporter.weights.Weights;
import dev.sdrt.graphs.OnnxModel;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Turns a diffusers component folder (config.json + safetensors), or a built-in architecture with
 * random weights, into an ONNX model.
 */
public final class Exporter {
    /** Architectures with built-in configs (resources under dev/sdrt/exporter/arch/). */
    public static final List<String> ARCHITECTURES = List.of("tiny", "tiny-sdxl", "tiny-sd3", "sd15", "sd21", "sdxl",
            "sd3-medium");

    private Exporter() {
    }

    /**
     * The exported model and what went into it.
     *
     * @param parameters    checkpoint parameter names the graph uses, with their element counts
     * @param unusedTensors checkpoint tensors the graph did not use (a sign of an unsupported layer)
     */
    public record Result(OnnxModel model, Component component, String modelClass, Map<String, Long> parameters,
            List<String> unusedTensors) {

        /** Elements of every checkpoint parameter the graph uses (constants the graph adds are not parameters). */
        public long parameterCount() {
            return parameters.values().stream().mapToLong(Long::longValue).sum();
        }
    }

    /** Exports from a component folder; {@code component} may be null to infer it from config.json. */
    public static Result fromCheckpoint(Path folder, Component component, ExportOptions options) throws IOException {
        DiffusersConfig config = DiffusersConfig.load(folder);
        Component c = component != null ? component : inferComponent(config);
        try (TensorSource source = SafetensorsFinder.open(folder)) {
            Weights weights = new CheckpointWeights(source, folder.toString());
            OnnxModel model = build(c, config, weights, options);
            List<String> unused = weights.unused().stream().filter(name -> !belongsElsewhere(c, name)).toList();
            return new Result(model, c, config.className(), Map.copyOf(weights.used()), unused);
        }
    }

    /**
     * Checkpoint tensors that a component leaves out on purpose: the other half of a VAE, and the
     * position_ids buffer that older CLIP checkpoints store.
     */
    private static boolean belongsElsewhere(Component c, String tensor) {
        return switch (c) {
            case VAE_DECODER -> tensor.startsWith("encoder.") || tensor.startsWith("quant_conv.");
            case VAE_ENCODER -> tensor.startsWith("decoder.") || tensor.startsWith("post_quant_conv.");
            case TEXT_ENCODER, TEXT_ENCODER_2 -> tensor.endsWith("embeddings.position_ids");
            default -> false;
        };
    }

    /** Exports a built-in architecture with seeded random weights (generated while saving). */
    public static Result random(String arch, Component component, long seed, ExportOptions options) {
        DiffusersConfig config = builtInConfig(arch, component);
        Weights weights = new RandomWeights(seed);
        OnnxModel model = build(component, config, weights, options);
        return new Result(model, component, config.className(), Map.copyOf(weights.used()), List.of());
    }

    /** The built-in config.json of {@code component} in architecture {@code arch}. */
    public static DiffusersConfig builtInConfig(String arch, Component component) {
        if (!ARCHITECTURES.contains(arch)) {
            throw new IllegalArgumentException("unknown architecture '" + arch + "'; built in: " + String.join(", ", ARCHITECTURES));
        }
        String resource = "arch/" + arch + "/" + component.folder() + ".json";
        try (InputStream in = Exporter.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("architecture " + arch + " has no " + component + " (its components: "
                        + componentsOf(arch) + ")");
            }
            return DiffusersConfig.parse(Path.of(resource), new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read built-in config " + resource, e);
        }
    }

    /** Components that architecture {@code arch} ships configs for. */
    public static List<Component> componentsOf(String arch) {
        return java.util.Arrays.stream(Component.values())
                .filter(c -> Exporter.class.getResource("arch/" + arch + "/" + c.folder() + ".json") != null)
                .toList();
    }

    /** The component a config describes; AutoencoderKL means its decoder unless asked otherwise. */
    public static Component inferComponent(DiffusersConfig config) {
        String cls = config.className();
        return switch (cls) {
            case "UNet2DConditionModel" -> Component.UNET;
            case "AutoencoderKL" -> Component.VAE_DECODER;
            case "CLIPTextModel", "CLIPTextModelWithProjection" -> Component.TEXT_ENCODER;
            case "SD3Transformer2DModel" -> Component.TRANSFORMER;
            default -> throw new IllegalArgumentException(config.file() + ": model class '" + cls
                    + "' is not supported (sdrt exports UNet2DConditionModel, AutoencoderKL, CLIPTextModel, "
                    + "CLIPTextModelWithProjection, SD3Transformer2DModel)");
        };
    }

    private static OnnxModel build(Component component, DiffusersConfig config, Weights weights, ExportOptions options) {
        String cls = config.className();
        Component natural = inferComponent(config);
        boolean fits = natural == component
                || (natural == Component.VAE_DECODER && component == Component.VAE_ENCODER)
                || (natural == Component.TEXT_ENCODER && component == Component.TEXT_ENCODER_2);
        if (!fits) {
            throw new IllegalArgumentException(config.file() + " describes a " + cls + ", which cannot be exported as " + component);
        }
        return switch (component) {
            case UNET -> UNet2DConditionExporter.export(config, weights, options);
            case VAE_DECODER -> AutoencoderKLExporter.exportDecoder(config, weights, options);
            case VAE_ENCODER -> AutoencoderKLExporter.exportEncoder(config, weights, options);
            case TEXT_ENCODER, TEXT_ENCODER_2 -> ClipTextExporter.export(config, weights, options);
            case TRANSFORMER -> Sd3TransformerExporter.export(config, weights, options);
        };
    }
}
