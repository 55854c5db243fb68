package org.flinkbridge.transport.shm;

import org.flinkbridge.protocol.RingFolder;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

import static org.flinkbridge.transport.shm.RingLayout.BRIDGE_HEARTBEAT_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.BRIDGE_PID_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.CLOSED_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.FROM_WORKER_CAPACITY_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.FROM_WORKER_CONTROL_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.HEADER_SIZE;
import static org.flinkbridge.transport.shm.RingLayout.HEADER_SIZE_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.MAGIC;
import static org.flinkbridge.transport.shm.RingLayout.MAGIC_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.TOKEN_LENGTH;
import static org.flinkbridge.transport.shm.RingLayout.TOKEN_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.TO_WORKER_CAPACITY_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.TO_WORKER_CONTROL_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.VERSION;
import static org.flinkbridge.transport.shm.RingLayout.VERSION_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.WORKER_HEARTBEAT_OFFSET;
import static org.flinkbridge.transport.shm.RingLayout.WORKER_PID_OFFSET;

/**
 * One session's ring file, mapped: created by the bridge (mode 0600, in a private 0700 directory, pages
 * touched up front), attached by the worker after checking its header and token. The bridge removes it
 * when the session closes.
 */
public final class RingFile implements AutoCloseable {

    /** Spins before a wait sleeps on its futex: a few microseconds, since a busy peer answers sooner. */
    static final int SPINS = 2_000;

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final boolean bridgeSide;
    private final int toWorkerCapacity;
    private final int fromWorkerCapacity;
    private final RingControl toWorkerControl;
    private final RingControl fromWorkerControl;
    private boolean closed;

    private RingFile(Path path, Arena arena, MemorySegment file, boolean bridgeSide) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.bridgeSide = bridgeSide;
        this.toWorkerCapacity = file.get(ValueLayout.JAVA_INT, TO_WORKER_CAPACITY_OFFSET);
        this.fromWorkerCapacity = file.get(ValueLayout.JAVA_INT, FROM_WORKER_CAPACITY_OFFSET);
        this.toWorkerControl = new RingControl(file, TO_WORKER_CONTROL_OFFSET);
        this.fromWorkerControl = new RingControl(file, FROM_WORKER_CONTROL_OFFSET);
        Heartbeats.start(this);
    }

    /** The bridge side: creates and maps a new ring file for a session. */
    public static RingFile create(Path path, int toWorkerCapacity, int fromWorkerCapacity, String token)
            throws IOException {
        checkCapacity("to-worker", toWorkerCapacity);
        checkCapacity("from-worker", fromWorkerCapacity);
        byte[] tokenBytes = tokenBytes(token);
        RingFolder.ensurePrivate(path.getParent());
        Files.createFile(path, PosixFilePermissions.asFileAttribute(RingFiles.OWNER_READ_WRITE));
        long size = RingLayout.fileSize(toWorkerCapacity, fromWorkerCapacity);
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            FileAllocation.allocate(path, size);
            MemorySegment file = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            // The first write to a page costs ~15 µs on this kind of VM: pay it now, not per record.
            for (long page = 0; page < size; page += 4096) {
                file.set(ValueLayout.JAVA_BYTE, page, (byte) 0);
            }
            file.set(ValueLayout.JAVA_INT, VERSION_OFFSET, VERSION);
            file.set(ValueLayout.JAVA_INT, HEADER_SIZE_OFFSET, HEADER_SIZE);
            file.set(ValueLayout.JAVA_INT, TO_WORKER_CAPACITY_OFFSET, toWorkerCapacity);
            file.set(ValueLayout.JAVA_INT, FROM_WORKER_CAPACITY_OFFSET, fromWorkerCapacity);
            file.set(ValueLayout.JAVA_INT, BRIDGE_PID_OFFSET, (int) ProcessHandle.current().pid());
            MemorySegment.copy(MemorySegment.ofArray(tokenBytes), 0, file, TOKEN_OFFSET, tokenBytes.length);
            Words.LONG.setVolatile(file, (long) BRIDGE_HEARTBEAT_OFFSET, System.currentTimeMillis());
            // The magic goes last: a reader that sees it sees a complete header.
            Words.LONG.setRelease(file, (long) MAGIC_OFFSET, MAGIC);
            return new RingFile(path, arena, file, true);
        } catch (IOException | RuntimeException e) {
            arena.close();
            Files.deleteIfExists(path);
            throw e;
        }
    }

    /** The worker side: maps an existing ring file, refusing it unless header and token are right. */
    public static RingFile attach(Path path, String token) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = channel.size();
            if (size < HEADER_SIZE) {
                throw new RingException(path + ": not a ring file: shorter than a ring file's header");
            }
            MemorySegment file = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            long magic = (long) Words.LONG.getAcquire(file, (long) MAGIC_OFFSET);
            if (magic != MAGIC) {
                // Says nothing of what the file holds instead: no error echoes a file's contents.
                throw new RingException(path + ": not a ring file (it does not start with the ring magic)");
            }
            int version = file.get(ValueLayout.JAVA_INT, VERSION_OFFSET);
            expect(path, "version", Integer.toString(VERSION), Integer.toString(version), version == VERSION);
            int headerSize = file.get(ValueLayout.JAVA_INT, HEADER_SIZE_OFFSET);
            expect(path, "header size", Integer.toString(HEADER_SIZE), Integer.toString(headerSize),
                    headerSize == HEADER_SIZE);
            int toWorker = file.get(ValueLayout.JAVA_INT, TO_WORKER_CAPACITY_OFFSET);
            int fromWorker = file.get(ValueLayout.JAVA_INT, FROM_WORKER_CAPACITY_OFFSET);
            checkCapacity("to-worker", toWorker);
            checkCapacity("from-worker", fromWorker);
            expect(path, "file size", Long.toString(RingLayout.fileSize(toWorker, fromWorker)), Long.toString(size),
                    size == RingLayout.fileSize(toWorker, fromWorker));
            byte[] expected = tokenBytes(token);
            byte[] found = file.asSlice(TOKEN_OFFSET, TOKEN_LENGTH).toArray(ValueLayout.JAVA_BYTE);
            if (!java.security.MessageDigest.isEqual(expected, found)) {
                throw new RingException(path + ": the session token does not match; refusing the ring");
            }
            file.set(ValueLayout.JAVA_INT, WORKER_PID_OFFSET, (int) ProcessHandle.current().pid());
            Words.LONG.setVolatile(file, (long) WORKER_HEARTBEAT_OFFSET, System.currentTimeMillis());
            return new RingFile(path, arena, file, false);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static void expect(Path path, String field, String expected, String found, boolean ok)
            throws RingException {
        if (!ok) {
            throw new RingException(path + ": not a ring file this side understands: " + field + " is " + found
                    + ", expected " + expected);
        }
    }

    private static void checkCapacity(String ring, int capacity) throws RingException {
        if (capacity < RingLayout.MIN_CAPACITY || Integer.bitCount(capacity) != 1) {
            throw new RingException("the " + ring + " ring capacity " + capacity
                    + " must be a power of two of at least " + RingLayout.MIN_CAPACITY);
        }
    }

    private static byte[] tokenBytes(String token) throws RingException {
        byte[] bytes = new byte[TOKEN_LENGTH];
        byte[] text = token.getBytes(StandardCharsets.US_ASCII);
        if (text.length == 0 || text.length > TOKEN_LENGTH || !StandardCharsets.US_ASCII.newEncoder().canEncode(token)) {
            throw new RingException("a session token must be 1 to " + TOKEN_LENGTH + " ASCII characters");
        }
        System.arraycopy(text, 0, bytes, 0, text.length);
        return bytes;
    }

    private long dataOffset(boolean toWorker) {
        return toWorker ? HEADER_SIZE : (long) HEADER_SIZE + toWorkerCapacity;
    }

    /** The bridge writes inputs here; the worker reads them with {@link #toWorkerConsumer}. */
    public RingProducer toWorkerProducer() {
        return new RingProducer(file, TO_WORKER_CONTROL_OFFSET, dataOffset(true), toWorkerCapacity,
                new WaitStrategy(SPINS), path + " (to-worker ring)");
    }

    public RingConsumer toWorkerConsumer() {
        return new RingConsumer(file, TO_WORKER_CONTROL_OFFSET, dataOffset(true), toWorkerCapacity,
                new WaitStrategy(SPINS), path + " (to-worker ring)");
    }

    public RingProducer fromWorkerProducer() {
        return new RingProducer(file, FROM_WORKER_CONTROL_OFFSET, dataOffset(false), fromWorkerCapacity,
                new WaitStrategy(SPINS), path + " (from-worker ring)");
    }

    public RingConsumer fromWorkerConsumer() {
        return new RingConsumer(file, FROM_WORKER_CONTROL_OFFSET, dataOffset(false), fromWorkerCapacity,
                new WaitStrategy(SPINS), path + " (from-worker ring)");
    }

    /** Bytes of inputs published to the to-worker ring that the worker has not yet taken (for metrics). */
    public long toWorkerUsedBytes() {
        return toWorkerControl.usedBytes();
    }

    /** Bytes of answers published to the from-worker ring that the bridge has not yet taken (for metrics). */
    public long fromWorkerUsedBytes() {
        return fromWorkerControl.usedBytes();
    }

    /** Watches the from-worker ring for the bridge, from a thread other than its consumer's. */
    public RingWatch fromWorkerWatch() {
        return new RingWatch(file, FROM_WORKER_CONTROL_OFFSET);
    }

    /**
     * Marks this side alive now; the peer reads it to tell a slow side from a dead one. Every open ring is
     * beaten every {@value Heartbeats#INTERVAL_MILLIS} ms without being asked.
     */
    public synchronized void heartbeat() {
        if (!closed) {
            Words.LONG.setRelease(file, (long) (bridgeSide ? BRIDGE_HEARTBEAT_OFFSET : WORKER_HEARTBEAT_OFFSET),
                    System.currentTimeMillis());
        }
    }

    /** Why the peer is gone (it closed the ring), or null while it may be alive. */
    public String peerGone() {
        return switch (closedFlag()) {
            case 0 -> null;
            case RingLayout.CLOSED_STOPPED -> "the " + peerName() + " stopped as asked, having answered every input"
                    + " it read";
            default -> "the " + peerName() + " closed the ring";
        };
    }

    /** Whether the worker left because it was asked to stop (an upgrade), not because it failed or was lost. */
    public boolean peerStopped() {
        return closedFlag() == RingLayout.CLOSED_STOPPED;
    }

    private int closedFlag() {
        return (int) Words.INT.getAcquire(file, (long) CLOSED_OFFSET);
    }

    /**
     * Why the peer counts as lost: it closed the ring, or its heartbeat has been silent for more than
     * {@code silenceLimitMillis}; null while it is alive. Process ids are not looked at: the peer may live
     * in another PID namespace (see {@link RingLayout}). Cheap enough to call on every wait.
     */
    public String peerLost(long silenceLimitMillis) {
        String closedIt = peerGone();
        if (closedIt != null) {
            return closedIt;
        }
        long silence = peerSilenceMillis();
        return silence > silenceLimitMillis ? "no heartbeat from the " + peerName() + " for " + silence
                + " ms (the limit is " + silenceLimitMillis + " ms)" : null;
    }

    private String peerName() {
        return bridgeSide ? "worker" : "bridge";
    }

    /** Milliseconds since the peer's last heartbeat. */
    public long peerSilenceMillis() {
        long beat = (long) Words.LONG.getAcquire(file, (long) (bridgeSide ? WORKER_HEARTBEAT_OFFSET
                : BRIDGE_HEARTBEAT_OFFSET));
        return System.currentTimeMillis() - beat;
    }

    /** Wakes whoever sleeps on either ring, so the peer sees the closed flag now rather than at its timeout. */
    private void wakeSleepers() {
        toWorkerControl.wakeSleepers();
        fromWorkerControl.wakeSleepers();
    }

    public Path path() {
        return path;
    }

    /** Tells the peer this side left, unmaps, and (on the bridge side) removes the file. */
    @Override
    public void close() throws IOException {
        close(RingLayout.CLOSED_LEFT);
    }

    /**
     * The worker's side, asked to stop (SIGTERM): tells the bridge it answered every input it read and left on
     * purpose, so that the bridge moves the session to a new worker rather than treat it as a failure.
     */
    public void closeStopped() throws IOException {
        close(RingLayout.CLOSED_STOPPED);
    }

    private void close(int flag) throws IOException {
        Heartbeats.stop(this);
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        Words.INT.setRelease(file, (long) CLOSED_OFFSET, flag);
        wakeSleepers();
        arena.close();
        if (bridgeSide) {
            Files.deleteIfExists(path);
        }
    }
}
