package org.flinkbridge.transport.shm;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.stream.Stream;

/** Where ring files live: a private directory on a tmpfs, cleaned of files left by dead processes. */
public final class RingFiles {

    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rwx------");
    public static final String SUFFIX = ".ring";
    /** The directories this process has cleaned already. */
    private static final Set<Path> CLEANED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private RingFiles() {}

    /** The default directory: /dev/shm (a tmpfs) when present, else the temp directory. */
    public static Path defaultDirectory() {
        Path shm = Path.of("/dev/shm");
        Path base = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        return base.resolve("flink-bridge-" + System.getProperty("user.name"));
    }

    /** Creates {@code dir} with mode 0700, or checks that an existing one is ours and private. */
    static void ensurePrivateDirectory(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            try {
                Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
            } catch (java.nio.file.FileAlreadyExistsException raced) {
                // another session created it first; checked below
            }
        }
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new RingException("ring directory " + dir + " is not a directory");
        }
        Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        if (!permissions.equals(OWNER_ONLY)) {
            throw new RingException("ring directory " + dir + " has mode " + PosixFilePermissions.toString(permissions)
                    + "; it must be rwx------ so no other user can open a ring");
        }
        String owner = Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).getName();
        if (!owner.equals(System.getProperty("user.name"))) {
            throw new RingException("ring directory " + dir + " belongs to " + owner + ", not to this user");
        }
    }

    /** A file with no complete header may be one another session is creating this moment; only old ones go. */
    private static final long HEADERLESS_GRACE_MILLIS = 60_000;

    /**
     * Removes ring files left by a crash: those whose creating bridge process is gone, and those that never
     * got a complete header and are older than a minute (a younger one may be being created right now by a
     * session of this very process). Returns how many were removed. Called when a process starts using
     * {@code dir}.
     */
    public static int cleanStale(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        int removed = 0;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.filter(f -> f.getFileName().toString().endsWith(SUFFIX)).toList()) {
                if (isStale(file) && Files.deleteIfExists(file)) {
                    removed++;
                }
            }
        }
        return removed;
    }

    private static boolean isStale(Path file) throws IOException {
        int pid = creatorPid(file);
        if (pid > 0) {
            return ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true);
        }
        try {
            return System.currentTimeMillis() - Files.getLastModifiedTime(file).toMillis() > HEADERLESS_GRACE_MILLIS;
        } catch (java.nio.file.NoSuchFileException gone) {
            return false;
        }
    }

    /** {@link #cleanStale} the first time this process uses {@code dir}; 0 on later calls. */
    public static int cleanStaleOnce(Path dir) throws IOException {
        return CLEANED.add(dir.toAbsolutePath().normalize()) ? cleanStale(dir) : 0;
    }

    /** The bridge pid recorded in a ring file's header, or 0 when it has no readable header. */
    private static int creatorPid(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            if (channel.size() < RingLayout.HEADER_SIZE) {
                return 0;
            }
            MemorySegment header = channel.map(FileChannel.MapMode.READ_ONLY, 0, RingLayout.HEADER_SIZE, arena);
            if (header.get(ValueLayout.JAVA_LONG, RingLayout.MAGIC_OFFSET) != RingLayout.MAGIC) {
                return 0;
            }
            return header.get(ValueLayout.JAVA_INT, RingLayout.BRIDGE_PID_OFFSET);
        } catch (java.nio.file.NoSuchFileException gone) {
            return 0;
        }
    }
}
