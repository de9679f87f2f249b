package dev.sdrt.cli;

import java.util.Locale;

/**
 * An image size as the commands take it: "WxH" in image pixels, e.g. {@code 512x512}; the x may be
 * upper case and either side may have spaces around it.
 */
public record ImageSize(int width, int height) {

    /**
     * Parses {@code text} as WxH with both sides at least {@code minimum}: 0 where a 0 side means the
     * model's default (as {@code --width 0} does), 1 where a real size is needed.
     *
     * @param option the option the text came from, named in the error
     * @throws IllegalArgumentException for anything else, a side outside int included
     */
    public static ImageSize parse(String text, String option, int minimum) {
        // The limit -1 keeps trailing empty parts, so "512x" and "512x512x" are refused, not read as fewer sides.
        String[] sides = text.toLowerCase(Locale.ROOT).split("x", -1);
        if (sides.length == 2) {
            try {
                ImageSize size = new ImageSize(Integer.parseInt(sides[0].trim()), Integer.parseInt(sides[1].trim()));
                if (size.width() >= minimum && size.height() >= minimum) {
                    return size;
                }
            } catch (NumberFormatException notANumber) {
                // Refused below with every other malformed size.
            }
        }
        throw new IllegalArgumentException(option + " must look like 512x512, not '" + text + "'");
    }

    @Override
    public String toString() {
        return width + "x" + height;
    }
}
