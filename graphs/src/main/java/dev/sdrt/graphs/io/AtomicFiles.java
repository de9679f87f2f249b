package dev.sdrt.graphs.io;

import com.google.common.util.concurrent.Striped;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.Lock;
import java.util.regex.Pattern;

/**
 * Writes files so that readers never see a half-written one: write to a temp file in the same
 * folder, flush it to disk, then move it over the target. (Not Files.createTempFile: its
 * owner-only permissions would carry over to the final file.)
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Fills the temp file it is given. */
    @FunctionalInterface
    public interface Writer {
        void write(Path temp) throws IOException;
    }

    /** Writes {@code target} through {@code writer}; on failure the old target is untouched and no temp file stays. */
    public static void write(Path target, Writer writer) throws IOException {
        Path temp = tempBeside(target);
        try {
            writer.write(temp);
            sync(temp);
            replace(temp, target);
            syncFolder(temp.getParent());
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** A fresh, not yet existing path in the target's folder: {@code .NAME.<hex>.tmp}. */
    public static Path tempBeside(Path target) {
        Path abs = target.toAbsolutePath();
        return abs.resolveSibling("." + abs.getFileName() + "." + Integer.toHexString(ThreadLocalRandom.current().nextInt()) + ".tmp");
    }

    /** Moves {@code temp} over {@code target}, atomically where the file system allows. */
    public static void replace(Path temp, Path target) throws IOException {
        try {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Flushes a written file's contents to disk, so a rename of it never outlives its data in a crash. */
    public static void sync(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }

    /** Flushes a folder's entries (renames, new and deleted files) to disk. */
    public static void syncFolder(Path folder) throws IOException {
        FileChannel ch;
        try {
            ch = FileChannel.open(folder, StandardOpenOption.READ);
        } catch (IOException e) {
            return; // Windows cannot open a folder; its file systems journal renames themselves
        }
        try (ch) {
            ch.force(true);
        }
    }

    /**
     * Deletes the temp files {@link #tempBeside} made for {@code target} that are still there.
     * Call it holding the target's {@link #lock}: every save of the target holds that lock while its
     * temps exist, so any found then were left by a save that was killed; no age guess is needed.
     */
    public static void deleteStaleTemps(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        Pattern temps = Pattern.compile(Pattern.quote("." + abs.getFileName() + ".") + "[0-9a-f]{1,8}\\.tmp");
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(abs.getParent())) {
            for (Path entry : entries) {
                if (temps.matcher(entry.getFileName().toString()).matches()) {
                    Files.deleteIfExists(entry);
                }
            }
        }
    }

    /**
     * Takes the lock that saves of {@code target} hold, waiting while another thread or process
     * holds it. It lives in {@code .NAME.lock} beside the target, which exists only while held (or
     * after a holder was killed; the next one reuses it). The target's folder must exist.
     */
    public static TargetLock lock(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        // the real folder: threads naming one target through different links must queue on one lock
        return TargetLock.acquire(abs.getParent().toRealPath().resolve(abs.getFileName()));
    }

    /** Held while a target is being replaced; closing it releases it. */
    public static final class TargetLock implements Closeable {
        /** File locks belong to the whole process, so threads of this one queue here first. */
        private static final Striped<Lock> THREADS = Striped.lock(64);

        private final Lock threads;
        private final Path file;
        private final FileChannel channel;
        private final FileLock lock;

        private TargetLock(Lock threads, Path file, FileChannel channel, FileLock lock) {
            this.threads = threads;
            this.file = file;
            this.channel = channel;
            this.lock = lock;
        }

        static TargetLock acquire(Path target) throws IOException {
            Lock threads = THREADS.get(target);
            threads.lock();
            try {
                Path file = target.resolveSibling("." + target.getFileName() + ".lock");
                while (true) {
                    FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                            StandardOpenOption.WRITE);
                    try {
                        FileLock lock = channel.lock();
                        if (isStillNamed(channel, file)) {
                            return new TargetLock(threads, file, channel, lock);
                        }
                    } catch (IOException | RuntimeException e) {
                        channel.close();
                        throw e;
                    }
                    channel.close(); // locked a file its last holder had already deleted: lock the current one
                }
            } catch (IOException | RuntimeException e) {
                threads.unlock();
                throw e;
            }
        }

        /**
         * Whether {@code file} still names the file {@code channel} holds locked: a holder deletes the
         * lock file before releasing it, so a waiter can wake up holding a file that has no name any
         * more, while a newcomer locks a new file of that name. A token written through the channel
         * and read back through the name tells the two apart.
         */
        private static boolean isStillNamed(FileChannel channel, Path file) throws IOException {
            long token = ThreadLocalRandom.current().nextLong();
            ByteBuffer out = ByteBuffer.allocate(Long.BYTES).putLong(0, token);
            channel.truncate(0);
            channel.write(out, 0);
            try {
                byte[] read = Files.readAllBytes(file);
                return read.length == Long.BYTES && ByteBuffer.wrap(read).getLong() == token;
            } catch (NoSuchFileException e) {
                return false;
            }
        }

        @Override
        public void close() throws IOException {
            try {
                Files.deleteIfExists(file);
            } catch (IOException e) {
                // the save it guarded is done; a lock file left behind is reused by the next one
            }
            try {
                lock.release();
                channel.close();
            } finally {
                threads.unlock();
            }
        }
    }
}
