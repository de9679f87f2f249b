package dev.sdrt.exporter.safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** Finds the weights of a diffusers or transformers component folder (unet/, vae/, text_encoder/, ...). */
public final class SafetensorsFinder {
    /**
     * Weight file names in order of preference: diffusers names, then transformers names, each single-file
     * before sharded; the fp16 variants only as a fallback, because they have lost precision.
     */
    static final List<String> CANDIDATES = List.of(
            "diffusion_pytorch_model.safetensors",
            "diffusion_pytorch_model.safetensors.index.json",
            "model.safetensors",
            "model.safetensors.index.json",
            "diffusion_pytorch_model.fp16.safetensors",
            "diffusion_pytorch_model.safetensors.index.fp16.json",
            "model.fp16.safetensors",
            "model.safetensors.index.fp16.json");

    private static final int LISTED_ENTRIES = 20;

    private SafetensorsFinder() {
    }

    /**
     * The weights file (a {@code .safetensors} file or a shard index) of {@code componentFolder}.
     *
     * @throws SafetensorsException if there is none; the message lists what the folder holds
     */
    public static Path find(Path componentFolder) throws IOException {
        if (!Files.isDirectory(componentFolder)) {
            throw new SafetensorsException(componentFolder + ": not a folder");
        }
        for (String candidate : CANDIDATES) {
            Path file = componentFolder.resolve(candidate);
            if (Files.isRegularFile(file)) {
                return file;
            }
        }
        List<String> contents;
        try (Stream<Path> entries = Files.list(componentFolder)) {
            contents = entries.map(entry -> entry.getFileName().toString()).sorted().toList();
        }
        String listing = contents.isEmpty() ? "it is empty"
                : "it holds " + String.join(", ", contents.subList(0, Math.min(LISTED_ENTRIES, contents.size())))
                        + (contents.size() > LISTED_ENTRIES ? " and " + (contents.size() - LISTED_ENTRIES) + " more" : "");
        boolean hasPickles = contents.stream().anyMatch(name -> name.endsWith(".bin") || name.endsWith(".ckpt"));
        throw new SafetensorsException(componentFolder + ": no safetensors weights (looked for "
                + String.join(", ", CANDIDATES) + "); " + listing
                + (hasPickles ? ". PyTorch pickle weights (.bin, .ckpt) are not read; convert them to safetensors" : ""));
    }

    /**
     * Opens the weights of a component folder, or a weights file given directly: a {@code .json} file is
     * read as a shard index, anything else as a single safetensors file.
     */
    public static TensorSource open(Path folderOrFile) throws IOException {
        Path file = Files.isDirectory(folderOrFile) ? find(folderOrFile) : folderOrFile;
        if (file.getFileName().toString().endsWith(".json")) {
            return ShardedSafetensors.open(file);
        }
        return SafetensorsFile.open(file);
    }
}
