package dev.sdrt.cli;

import picocli.CommandLine.Option;

/** {@code --width} and {@code --height} of the commands that sample at one size (generate, calibrate); 0 for the model's. */
final class ImageSizeOptions {

    @Option(names = "--width", paramLabel = "W", defaultValue = "0", description = "image width (default: the model's)")
    int width;

    @Option(names = "--height", paramLabel = "H", defaultValue = "0", description = "image height (default: the model's)")
    int height;
}
