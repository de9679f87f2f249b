package dev.sdrt.runtime.ort;

import ai.onnxruntime.OrtEnvironment;
import java.io.File;
import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * ONNX Runtime's native libraries, loaded through its environment, and the temporary directory
 * they are extracted to, which this removes when the JVM exits.
 *
 * <p>ONNX Runtime's Java binding (1.29.0, {@code ai.onnxruntime.OnnxRuntime.init}) always creates a
 * directory {@code onnxruntime-java<random digits>} in {@code java.io.tmpdir}, extracts the
 * libraries from its jar into it, marks each extracted file {@link File#deleteOnExit} and only then
 * the directory. The JVM deletes in the reverse order of marking, so it tries the directory first,
 * while the libraries are still in it, and every run leaves an empty directory behind.
 *
 * <p>The directory is created even when {@code onnxruntime.native.path} is set (before that property
 * is read); it then stays empty and its deleteOnExit succeeds, but using the property would mean
 * sdrt extracting and keeping its own copies of the libraries for every platform and execution
 * provider. Deleting the libraries as soon as they are loaded would break the execution providers
 * (CUDA, TensorRT) that ONNX Runtime extracts into the same directory later and loads from next to
 * libonnxruntime. So a shutdown hook, which the JVM runs before its deleteOnExit pass, deletes the
 * directory with everything in it; Linux and macOS allow unlinking a loaded library.
 */
public final class OrtNativeLibraries {

    private static final Logger LOG = Logger.getLogger(OrtNativeLibraries.class.getName());
    /** The name ONNX Runtime gives its temporary directory, followed by random digits. */
    static final String EXTRACTION_DIRECTORY_PREFIX = "onnxruntime-java";

    private static boolean cleanupRegistered;

    private OrtNativeLibraries() {}

    /**
     * ONNX Runtime's environment, loading the native libraries on first use. Use this rather than
     * {@link OrtEnvironment#getEnvironment()} so that their temporary directory goes away at exit.
     */
    public static synchronized OrtEnvironment environment() {
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        if (!cleanupRegistered) {
            cleanupRegistered = true;
            extractionDirectory().ifPresent(directory -> Runtime.getRuntime().addShutdownHook(new Thread(
                    () -> deleteExtractionDirectory(directory), "sdrt-onnxruntime-temp-cleanup")));
        }
        return environment;
    }

    /**
     * The directory ONNX Runtime extracted its libraries to. No API tells, so this reads the binding's
     * private field; empty if a later version renames it (OrtNativeLibrariesTest then fails) or on
     * Android, where the libraries come from the APK and nothing is extracted.
     */
    private static Optional<Path> extractionDirectory() {
        try {
            Field field = Class.forName("ai.onnxruntime.OnnxRuntime").getDeclaredField("tempDirectory");
            field.setAccessible(true);
            if (field.get(null) instanceof Path directory && directory.getFileName() != null
                    && directory.getFileName().toString().startsWith(EXTRACTION_DIRECTORY_PREFIX)) {
                return Optional.of(directory);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.log(Level.FINE, "cannot find ONNX Runtime's temporary directory; it will stay after exit", e);
        }
        return Optional.empty();
    }

    private static void deleteExtractionDirectory(Path directory) {
        // ONNX Runtime extracts plain files only. Whatever cannot be deleted (a loaded DLL on Windows)
        // stays, as it would have without this; at exit there is no one left to tell.
        try {
            try (DirectoryStream<Path> files = Files.newDirectoryStream(directory)) {
                for (Path file : files) {
                    Files.deleteIfExists(file);
                }
            }
            Files.deleteIfExists(directory);
        } catch (IOException ignored) {
            // see above
        }
    }
}
