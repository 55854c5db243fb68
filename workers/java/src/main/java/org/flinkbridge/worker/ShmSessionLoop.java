package org.flinkbridge.worker;

import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.protocol.RecordKeys;
import org.flinkbridge.transport.grpc.CellFrames;
import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingException;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.transport.shm.RingProducer;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.timers.SessionTimers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Serves one shm session on its own thread: reads the to-worker ring in order, feeds the session's logic,
 * and writes each input's outputs and end marker (or error) into the from-worker ring. Answers are
 * published once per polled batch; when the bridge sends nothing the thread sleeps on the ring's futex.
 * It ends when the bridge closes the ring or is lost (its heartbeat silent too long), or when the ring is
 * corrupt, and then closes the session; the ring file of a lost bridge is removed.
 */
final class ShmSessionLoop implements FrameHandler, WorkerSession.Answers, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ShmSessionLoop.class);
    /**
     * Frames taken per poll: answers are published after each batch. Small, so that when inputs queue up
     * the first answers of a batch do not wait for the whole of it; a publication costs one store.
     */
    private static final int BATCH_FRAMES = 32;
    /** The longest sleep between checks that the bridge is still there. */
    private static final long IDLE_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    /** A BARRIER's key lengths, little-endian like every length on a ring. */
    private static final ValueLayout.OfInt KEY_LENGTH =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final WorkerSession session;
    private final RingFile ring;
    private final RingConsumer inputs;
    private final RingProducer answers;
    private final long livenessTimeoutMillis;
    private final Runnable onEnd;
    private final Thread thread;
    private volatile boolean stopping;
    /** The worker is asked to stop: the loop answers what it has read, then closes the ring as stopped. */
    private volatile boolean stopAsked;

    private ShmSessionLoop(WorkerSession session, RingFile ring, long livenessTimeoutMillis, Runnable onEnd) {
        this.session = session;
        this.ring = ring;
        this.inputs = ring.toWorkerConsumer();
        this.answers = ring.fromWorkerProducer();
        this.livenessTimeoutMillis = livenessTimeoutMillis;
        this.onEnd = onEnd;
        this.thread = new Thread(this::run, "shm-" + session.id());
        this.thread.setDaemon(true);
    }

    /** Starts serving {@code ring} for {@code session}; {@code onEnd} runs on the loop's thread when it ends. */
    static ShmSessionLoop start(WorkerSession session, RingFile ring, long livenessTimeoutMillis, Runnable onEnd) {
        ShmSessionLoop loop = new ShmSessionLoop(session, ring, livenessTimeoutMillis, onEnd);
        loop.thread.start();
        return loop;
    }

    private void run() {
        try {
            while (!stopping && !stopAsked) {
                if (inputs.poll(this, BATCH_FRAMES) > 0) {
                    answers.publish();
                    continue;
                }
                inputs.awaitFrames(IDLE_WAIT_NANOS);
                String lost = inputs.hasFrames() ? null : ring.peerLost(livenessTimeoutMillis);
                if (lost != null) {
                    LOG.info("{}: ending: {}", session.name(), lost);
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.error("{}: the ring failed; ending the session", session.name(), e);
        } finally {
            // Silent without closing the ring: the bridge crashed and will not remove its file.
            boolean bridgeLost = !stopping && ring.peerGone() == null && ring.peerLost(livenessTimeoutMillis) != null;
            try {
                if (stopAsked && !stopping) {
                    LOG.info("{}: stopped as asked, every input it read answered", session.name());
                    ring.closeStopped();
                } else {
                    ring.close();
                }
            } catch (IOException e) {
                LOG.warn("{}: unmapping its ring failed", session.name(), e);
            }
            if (bridgeLost) {
                removeAbandonedRing();
            }
            if (!stopping) {
                onEnd.run();
            }
        }
    }

    /** A bridge that crashed cannot remove its ring file, and a restarted container may reuse its pid: this side does. */
    private void removeAbandonedRing() {
        try {
            if (Files.deleteIfExists(ring.path())) {
                LOG.info("{}: removed the ring file {} its lost bridge left", session.name(), ring.path());
            }
        } catch (IOException e) {
            LOG.warn("{}: removing the ring file {} its lost bridge left failed", session.name(), ring.path(), e);
        }
    }

    @Override
    public void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length)
            throws IOException {
        switch (type) {
            case FrameType.RECORD -> record(flags, sequence, file, offset, length);
            case FrameType.TIMER -> timer(flags, sequence, file, offset, length);
            case FrameType.LOAD -> session.load(sequence, keyCells(sequence, file, offset, length));
            case FrameType.WATERMARK -> session.watermark(sequence, longBody(type, sequence, file, offset, length), this);
            case FrameType.BARRIER ->
                    session.barrier(sequence, evicted(session.name(), sequence, file, offset, length), this);
            case FrameType.CLOCK -> session.clock(sequence, longBody(type, sequence, file, offset, length), this);
            default -> throw new RingException(session.name() + ": the bridge sent a " + FrameType.name(type)
                    + " frame (input #" + sequence + "), which a bridge never sends");
        }
    }

    /** A RECORD: in a keyed session its key, then the record body. */
    private void record(int flags, long sequence, MemorySegment file, long offset, int length) throws IOException {
        byte[] key = null;
        long body = offset;
        int bodyLength = length;
        if (session.keyed()) {
            key = RecordKeys.read(file, offset, length);
            body += RecordKeys.prefixLength(key);
            bodyLength -= RecordKeys.prefixLength(key);
        }
        session.record(sequence, KeyGroups.fromRingFlags(flags), key,
                RecordCodec.read(file, body, bodyLength, WireRecords::record), this);
    }

    /**
     * A TIMER: its key as a keyed RECORD carries it, then the TimerFiring message. A session whose steps set no timers
     * reads none of it: the TIMER is an error there whatever it holds.
     */
    private void timer(int flags, long sequence, MemorySegment file, long offset, int length) throws IOException {
        if (!session.setsTimers()) {
            session.timer(sequence, KeyGroups.NONE, null, TimerFiring.getDefaultInstance(), this);
            return;
        }
        byte[] key = RecordKeys.read(file, offset, length);
        int prefix = RecordKeys.prefixLength(key);
        byte[] body = new byte[length - prefix];
        MemorySegment.copy(file, ValueLayout.JAVA_BYTE, offset + prefix, body, 0, body.length);
        TimerFiring firing;
        try {
            firing = TimerFiring.parseFrom(body);
        } catch (IOException e) {
            throw new RingException(session.name() + ": a TIMER frame (input #" + sequence + "): " + e.getMessage());
        }
        session.timer(sequence, KeyGroups.fromRingFlags(flags), key, firing, this);
    }

    /** The KeyCells message a LOAD frame's body encodes, copied out of the ring before it is decoded. */
    private KeyCells keyCells(long sequence, MemorySegment file, long offset, int length) throws RingException {
        byte[] body = new byte[length];
        MemorySegment.copy(file, ValueLayout.JAVA_BYTE, offset, body, 0, length);
        try {
            return CellFrames.parse(body);
        } catch (IOException e) {
            throw new RingException(session.name() + ": a LOAD frame (input #" + sequence + "): " + e.getMessage());
        }
    }

    /**
     * The keys a BARRIER frame names for eviction: after its i64 checkpoint id, zero or more i32 little-endian key
     * lengths each followed by its key, up to the end of the body; each length read once and checked against what
     * is left, so a length that runs past the body (or is negative) is a corrupt frame.
     */
    static List<byte[]> evicted(String session, long sequence, MemorySegment file, long offset, int length)
            throws RingException {
        if (length < Long.BYTES) {
            throw new RingException(session + ": a BARRIER frame of " + length + " body bytes (input #" + sequence
                    + ")");
        }
        List<byte[]> keys = List.of();
        int at = Long.BYTES;
        while (at < length) {
            if (length - at < Integer.BYTES) {
                throw new RingException(session + ": a BARRIER frame (input #" + sequence + ") of " + length
                        + " body bytes ends inside the length of a key to evict, at byte " + at);
            }
            int keyLength = file.get(KEY_LENGTH, offset + at);
            at += Integer.BYTES;
            if (keyLength < 0 || keyLength > length - at) {
                throw new RingException(session + ": a BARRIER frame (input #" + sequence + ") of " + length
                        + " body bytes names a key to evict of " + keyLength + " bytes at byte " + at + ", where "
                        + (length - at) + " are left");
            }
            byte[] key = new byte[keyLength];
            MemorySegment.copy(file, ValueLayout.JAVA_BYTE, offset + at, key, 0, keyLength);
            at += keyLength;
            if (keys.isEmpty()) {
                keys = new ArrayList<>();
            }
            keys.add(key);
        }
        return keys;
    }

    /** The i64 a WATERMARK or CLOCK frame carries, once its length is known to hold one. */
    private long longBody(int type, long sequence, MemorySegment file, long offset, int length) throws RingException {
        if (length < Long.BYTES) {
            throw new RingException(session.name() + ": a " + FrameType.name(type) + " frame of " + length
                    + " body bytes (input #" + sequence + ")");
        }
        return file.get(ValueLayout.JAVA_LONG_UNALIGNED, offset);
    }

    @Override
    public void output(long sequence, Record output) throws IOException {
        long body = claim(FrameType.OUTPUT, sequence,
                RecordCodec.bodyLength(output.headers(), output.payload()));
        RecordCodec.write(answers.segment(), body, output.timestamp(), output.headers(), output.payload());
    }

    @Override
    public void endOfOutputs(long sequence) throws IOException {
        claim(FrameType.END_OF_OUTPUTS, sequence, 0);
    }

    /** The message, cut to what the bridge takes and one frame holds (docs/protocol.md, "Error texts"). */
    @Override
    public void error(long sequence, String message) throws IOException {
        byte[] text = ErrorTexts.cut(message, Math.min(ErrorTexts.MAX_BYTES,
                answers.maxFrameLength() - RingLayout.FRAME_HEADER)).getBytes(StandardCharsets.UTF_8);
        long body = claim(FrameType.ERROR, sequence, text.length);
        MemorySegment.copy(text, 0, answers.segment(), ValueLayout.JAVA_BYTE, body, text.length);
    }

    @Override
    public void inputFailed(long sequence, String step, String errorClass, String message) throws IOException {
        byte[] body = InputFailures.body(step, errorClass, message,
                answers.maxFrameLength() - RingLayout.FRAME_HEADER);
        long at = claim(FrameType.INPUT_FAILED, sequence, body.length);
        MemorySegment.copy(body, 0, answers.segment(), ValueLayout.JAVA_BYTE, at, body.length);
    }

    @Override
    public void checkEncodable(Record output) throws IOException {
        long frame = RingLayout.FRAME_HEADER + (long) RecordCodec.bodyLength(output.headers(), output.payload());
        if (frame > answers.maxFrameLength()) {
            throw new IOException("an output of " + frame + " bytes does not fit in a frame of this session's ring "
                    + "(at most " + answers.maxFrameLength() + " bytes)");
        }
    }

    /** One key's changed cells, the protobuf encoding of its KeyCells as the frame's body. */
    @Override
    public void cellWrites(long sequence, KeyCells writes) throws IOException {
        byte[] encoded = writes.toByteArray();
        long body = claim(FrameType.CELL_WRITES, sequence, encoded.length);
        MemorySegment.copy(encoded, 0, answers.segment(), ValueLayout.JAVA_BYTE, body, encoded.length);
    }

    @Override
    public int maxCellWritesBytes() {
        return answers.maxFrameLength() - RingLayout.FRAME_HEADER;
    }

    /**
     * The TimerChanges message, encoded straight into the ring. An input's changes that do not fit one frame fail it
     * (a frame holds at least a hundred changes on the smallest ring).
     */
    @Override
    public void timers(long sequence, SessionTimers timers) throws IOException {
        int length = timers.encodedLength();
        if (RingLayout.FRAME_HEADER + (long) length > answers.maxFrameLength()) {
            throw new IOException("input #" + sequence + " made " + timers.changes() + " timer changes, "
                    + length + " bytes, more than a frame of this session's ring holds (at most "
                    + answers.maxFrameLength() + " bytes)");
        }
        timers.encode(answers.segment(), claim(FrameType.TIMERS, sequence, length));
    }

    /** Claims room for an answer, publishing what is written and waiting while the bridge catches up. */
    private long claim(int type, long sequence, int bodyLength) throws IOException {
        long body;
        while ((body = answers.tryClaim(type, sequence, bodyLength)) < 0) {
            // The bridge may itself wait for room for inputs: free what is handled and prod it to drain answers.
            inputs.releaseHandled();
            answers.awaitSpace(IDLE_WAIT_NANOS);
            String lost = ring.peerLost(livenessTimeoutMillis);
            if (lost != null || stopping) {
                throw new RingException(session.name() + ": cannot answer input #" + sequence + ": "
                        + (lost != null ? lost : "the session is closing"));
            }
        }
        return body;
    }

    /**
     * The worker is asked to stop (SIGTERM): the loop answers the inputs it has read, publishes the answers and
     * closes the ring as stopped, so that the bridge moves the session to a new worker; waits for that.
     */
    void stopAsAsked() throws InterruptedException {
        stopAsked = true;
        thread.join(TimeUnit.SECONDS.toMillis(5));
    }

    /** Stops the loop (the bridge closed the session over control) and waits for its thread to leave. */
    @Override
    public void close() throws InterruptedException {
        stopping = true;
        if (Thread.currentThread() != thread) {
            thread.join(TimeUnit.SECONDS.toMillis(5));
        }
    }
}
