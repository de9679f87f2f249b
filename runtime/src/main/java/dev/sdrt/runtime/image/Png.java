package dev.sdrt.runtime.image;

import dev.sdrt.runtime.io.AtomicFiles;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.DeflaterOutputStream;

/**
 * Writes 8-bit RGB PNG files with text chunks (generation parameters travel with the image, as
 * users of other Stable Diffusion tools expect). Written here because ImageIO's PNG writer makes
 * text metadata awkward; the format is small: signature, IHDR, iTXt*, IDAT, IEND.
 */
public final class Png {
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private Png() {
    }

    /** Encodes {@code rgb} (row-major, 3 bytes per pixel) as PNG bytes. */
    public static byte[] encode(int width, int height, byte[] rgb, Map<String, String> text) {
        if (width <= 0 || height <= 0 || rgb.length != (long) width * height * 3) {
            throw new IllegalArgumentException("RGB buffer of " + rgb.length + " bytes does not fit " + width + "x" + height);
        }
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream(rgb.length / 2 + 1024);
            out.write(SIGNATURE);
            ByteArrayOutputStream ihdr = new ByteArrayOutputStream();
            DataOutputStream h = new DataOutputStream(ihdr);
            h.writeInt(width);
            h.writeInt(height);
            h.writeByte(8); // bit depth
            h.writeByte(2); // colour type: truecolour
            h.writeByte(0); // deflate
            h.writeByte(0); // adaptive filtering
            h.writeByte(0); // no interlace
            chunk(out, "IHDR", ihdr.toByteArray());
            for (var e : text.entrySet()) {
                // iTXt carries UTF-8 (prompts may use any script); its keyword is Latin-1, 1 to 79 characters.
                byte[] key = e.getKey().getBytes(StandardCharsets.ISO_8859_1);
                if (key.length == 0 || key.length > 79) {
                    throw new IllegalArgumentException("PNG text key must have 1 to 79 characters: '" + e.getKey() + "'");
                }
                chunk(out, "iTXt", concat(key, new byte[] {0, 0, 0, 0, 0}, e.getValue().getBytes(StandardCharsets.UTF_8)));
            }
            ByteArrayOutputStream idat = new ByteArrayOutputStream();
            try (OutputStream z = new DeflaterOutputStream(idat)) {
                int stride = width * 3;
                for (int y = 0; y < height; y++) {
                    z.write(0); // filter type None: simple, and noise-like images compress poorly anyway
                    z.write(rgb, y * stride, stride);
                }
            }
            chunk(out, "IDAT", idat.toByteArray());
            chunk(out, "IEND", new byte[0]);
            return out.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException("in-memory PNG encoding failed", e);
        }
    }

    /** Writes a PNG atomically (temp file in the same folder, then a move), creating the folder if needed. */
    public static void write(Path file, int width, int height, byte[] rgb, Map<String, String> text) throws IOException {
        byte[] png = encode(width, height, rgb, text);
        Files.createDirectories(file.toAbsolutePath().getParent());
        AtomicFiles.write(file, tmp -> Files.write(tmp, png));
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            b.writeBytes(p);
        }
        return b.toByteArray();
    }

    private static void chunk(OutputStream out, String type, byte[] data) throws IOException {
        DataOutputStream d = new DataOutputStream(out);
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        d.writeInt(data.length);
        d.write(t);
        d.write(data);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(data);
        d.writeInt((int) crc.getValue());
    }
}
