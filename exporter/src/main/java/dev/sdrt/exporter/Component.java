package dev.sdrt.exporter;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The parts of a diffusion pipeline that sdrt exports, by their CLI names. */
public enum Component {
    UNET("unet", "unet"),
    VAE_DECODER("vae-decoder", "vae"),
    VAE_ENCODER("vae-encoder", "vae"),
    TEXT_ENCODER("text-encoder", "text_encoder"),
    TEXT_ENCODER_2("text-encoder-2", "text_encoder_2"),
    TRANSFORMER("transformer", "transformer");

    private final String cliName;
    private final String folder;

    Component(String cliName, String folder) {
        this.cliName = cliName;
        this.folder = folder;
    }

    public String cliName() {
        return cliName;
    }

    /** The folder of a diffusers pipeline (and of sdrt's built-in configs) holding this component. */
    public String folder() {
        return folder;
    }

    public static Component fromCliName(String name) {
        for (Component c : values()) {
            if (c.cliName.equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException("unknown component '" + name + "'; choose one of "
                + Arrays.stream(values()).map(Component::cliName).collect(Collectors.joining(", ")));
    }

    @Override
    public String toString() {
        return cliName;
    }
}
