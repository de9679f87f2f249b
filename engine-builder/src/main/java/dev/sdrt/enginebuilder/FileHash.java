package dev.sdrt.enginebuilder;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A file's SHA-256, streamed (weights files run to gigabytes).
 *
 * @param file   the file's name, relative to the ONNX model's folder for external data
 * @param sha256 lower-case hex digest
 * @param bytes  the file's size
 */
public record FileHash(String file, String sha256, long bytes) {

    /** Hashes already computed in this JVM, keyed by path, size and modification time. */
    private static final Map<String, String> MEMO = new ConcurrentHashMap<>();

    /** Hashes {@code path}, naming it {@code name} in the result. */
    public static FileHash of(Path path, String name) throws IOException {
        long size = Files.size(path);
        FileTime modified = Files.getLastModifiedTime(path);
        String memoKey = path.toAbsolutePath().normalize() + "|" + size + "|" + modified.toMillis();
        String digest = MEMO.get(memoKey);
        if (digest == null) {
            digest = sha256(path);
            MEMO.put(memoKey, digest);
        }
        return new FileHash(name, digest, size);
    }

    /** The SHA-256 of a file's contents as lower-case hex. */
    public static String sha256(Path path) throws IOException {
        MessageDigest digest = newDigest();
        byte[] buffer = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(path)) {
            for (int n; (n = in.read(buffer)) > 0; ) {
                digest.update(buffer, 0, n);
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /** The SHA-256 of a string's UTF-8 bytes as lower-case hex. */
    public static String sha256(String text) {
        return HexFormat.of().formatHex(newDigest().digest(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    private static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }
}
