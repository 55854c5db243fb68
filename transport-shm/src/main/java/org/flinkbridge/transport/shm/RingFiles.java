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
import java.util.UUID;
import java.util.stream.Stream;

/** Where ring files live: a private directory on a tmpfs, cleaned of files left by dead processes. */
public final class RingFiles {

    static final Set<PosixFilePermission> OWNER_READ_WRITE = PosixFilePermissions.fromString("rw-------");
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

    /**
     * Checks a ring file the worker is asked to open: it must lie directly in {@code directory} (the worker's
     * ring directory), and be a regular file, not a link, owned by this user with mode 0600, as a bridge
     * creates it. So a control call cannot make the worker open, or learn anything of, any other file.
     *
     * @return the path to open
     * @throws RingException naming the rule broken, and nothing of the file's contents
     */
    public static Path checkRingPath(Path directory, String ringPath) throws RingException {
        Path dir = directory.toAbsolutePath().normalize();
        Path ring = Path.of(ringPath).toAbsolutePath().normalize();
        if (!dir.equals(ring.getParent()) || !ring.getFileName().toString().endsWith(SUFFIX)) {
            throw new RingException("ring path " + ringPath + " is not a " + SUFFIX + " file in this worker's ring "
                    + "directory " + dir + " (start the worker with --ring-dir, or set flink-bridge.shm.directory, "
                    + "so that the two agree)");
        }
        try {
            if (!Files.isRegularFile(ring, LinkOption.NOFOLLOW_LINKS)) {
                throw new RingException("ring path " + ring + " is not a regular file");
            }
            String owner = Files.getOwner(ring, LinkOption.NOFOLLOW_LINKS).getName();
            if (!owner.equals(System.getProperty("user.name"))) {
                throw new RingException("ring file " + ring + " belongs to " + owner + ", not to this user");
            }
            Set<PosixFilePermission> mode = Files.getPosixFilePermissions(ring, LinkOption.NOFOLLOW_LINKS);
            if (!mode.equals(OWNER_READ_WRITE)) {
                throw new RingException("ring file " + ring + " has mode " + PosixFilePermissions.toString(mode)
                        + "; a ring file is rw-------");
            }
        } catch (RingException e) {
            throw e;
        } catch (IOException e) {
            throw new RingException("ring path " + ring + " cannot be checked: " + e.getClass().getSimpleName());
        }
        return ring;
    }

    /**
     * How long a ring file's bridge heartbeat may be silent (or a file without a complete header may exist)
     * before the file counts as left by a crash. A live bridge beats every 100 ms; a file with no header may
     * be one another session is creating this moment.
     */
    private static final long STALE_AFTER_MILLIS = 60_000;

    /**
     * Removes ring files left by a crash: those whose bridge heartbeat has been silent for a minute, and
     * those that never got a complete header and are older than a minute. Process ids are not looked at:
     * containers reuse them, and the bridge may live in another PID namespace. Returns how many were
     * removed. Called when a process starts using {@code dir}.
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
        long lastSign;
        try {
            long heartbeat = bridgeHeartbeat(file);
            lastSign = heartbeat > 0 ? heartbeat : Files.getLastModifiedTime(file).toMillis();
        } catch (java.nio.file.NoSuchFileException gone) {
            return false;
        }
        return System.currentTimeMillis() - lastSign > STALE_AFTER_MILLIS;
    }

    /** {@link #cleanStale} the first time this process uses {@code dir}; 0 on later calls. */
    public static int cleanStaleOnce(Path dir) throws IOException {
        return CLEANED.add(dir.toAbsolutePath().normalize()) ? cleanStale(dir) : 0;
    }

    /** The bridge's last heartbeat (epoch ms) in a ring file's header, or 0 when it has no complete header. */
    private static long bridgeHeartbeat(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            if (channel.size() < RingLayout.HEADER_SIZE) {
                return 0;
            }
            MemorySegment header = channel.map(FileChannel.MapMode.READ_ONLY, 0, RingLayout.HEADER_SIZE, arena);
            if ((long) Words.LONG.getAcquire(header, (long) RingLayout.MAGIC_OFFSET) != RingLayout.MAGIC) {
                return 0;
            }
            return (long) Words.LONG.getAcquire(header, (long) RingLayout.BRIDGE_HEARTBEAT_OFFSET);
        }
    }

    /** A new session's ring file in {@code directory}: a fresh name with the ring suffix. */
    public static Path newSessionPath(Path directory) {
        return directory.resolve("session-" + UUID.randomUUID() + SUFFIX);
    }
}
