package org.flinkbridge.bridge.session;

import com.google.protobuf.InvalidProtocolBufferException;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.protocol.RecordKeys;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.transport.grpc.CellFrames;
import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingException;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.transport.shm.RingProducer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The shared-memory data plane: inputs are written straight into the session's to-worker ring and answers
 * read in place from its from-worker ring. Inputs are published in batches while the worker is busy, so a
 * busy session makes no system call per record, and at once when the worker has caught up, so a quiet one
 * adds no batching delay. A wait spins briefly, then sleeps on the ring's futex, waking at least every
 * {@value #CHECK_MILLIS} ms to check that the worker is alive. No wait is endless: a worker whose heartbeat
 * goes on while its step hangs leaves the to-worker ring full, and the session fails once it has answered
 * nothing for {@code worker_timeout_ms}.
 */
final class ShmChannel implements WorkerChannel, FrameHandler {

    private static final Logger LOG = LoggerFactory.getLogger(ShmChannel.class);
    /** Answers taken per poll of the from-worker ring. */
    private static final int POLL_FRAMES = 1024;
    private static final long CHECK_MILLIS = 100;
    /** Inputs written between publications while the worker is busy. */
    private static final int PUBLISH_EVERY = 64;

    private final RingFile ring;
    private final RingProducer inputs;
    private final RingConsumer answers;
    private final String sessionName;
    private final long livenessTimeoutMillis;
    private final long workerTimeoutMillis;
    private final Supplier<String> workerExit;
    private Answers receiver;
    private int unpublished;
    private ShmAnswerWatcher watcher;

    /**
     * @param workerTimeoutMillis how long a full to-worker ring may go without an answer before the worker
     *                            counts as hung
     * @param workerExit why the worker process ended, when this JVM started it; null while it runs
     */
    ShmChannel(RingFile ring, String sessionName, long livenessTimeoutMillis, long workerTimeoutMillis,
               Supplier<String> workerExit) {
        this.ring = ring;
        this.inputs = ring.toWorkerProducer();
        this.answers = ring.fromWorkerConsumer();
        this.sessionName = sessionName;
        this.livenessTimeoutMillis = livenessTimeoutMillis;
        this.workerTimeoutMillis = workerTimeoutMillis;
        this.workerExit = workerExit;
    }

    @Override
    public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting)
            throws IOException {
        int keyBytes = key == null ? 0 : RecordKeys.prefixLength(key);
        long body = claim(FrameType.RECORD, KeyGroups.toRingFlags(keyGroup), sequence,
                keyBytes + RecordCodec.bodyLength(record.headers, record.payload), whileWaiting);
        if (key != null) {
            RecordKeys.write(inputs.segment(), body, key);
        }
        RecordCodec.write(inputs.segment(), body + keyBytes, record.timestamp, record.headers, record.payload);
        written();
    }

    @Override
    public void sendLoad(long sequence, KeyCells cells, Answers whileWaiting) throws IOException {
        byte[] bytes = cells.toByteArray();
        long body = claim(FrameType.LOAD, 0, sequence, bytes.length, whileWaiting);
        MemorySegment.copy(bytes, 0, inputs.segment(), ValueLayout.JAVA_BYTE, body, bytes.length);
        written();
    }

    /** The key behind its length, as a keyed RECORD carries it, then the firing's protobuf encoding. */
    @Override
    public void sendTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing, Answers whileWaiting)
            throws IOException {
        byte[] bytes = firing.toByteArray();
        long body = claim(FrameType.TIMER, KeyGroups.toRingFlags(keyGroup), sequence,
                RecordKeys.prefixLength(key) + bytes.length, whileWaiting);
        MemorySegment ring = inputs.segment();
        RecordKeys.write(ring, body, key);
        MemorySegment.copy(bytes, 0, ring, ValueLayout.JAVA_BYTE, body + RecordKeys.prefixLength(key), bytes.length);
        written();
    }

    @Override
    public int maxCellFrameBytes() {
        return inputs.maxFrameLength() - RingLayout.FRAME_HEADER;
    }

    @Override
    public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) throws IOException {
        sendLong(FrameType.WATERMARK, sequence, timestamp, whileWaiting);
    }

    @Override
    public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) throws IOException {
        sendLong(FrameType.CLOCK, sequence, processingTimeMillis, whileWaiting);
    }

    @Override
    public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) throws IOException {
        sendLong(FrameType.BARRIER, sequence, checkpointId, whileWaiting);
    }

    /** The checkpoint id, then each key to evict behind its length, as {@link RecordKeys} puts a record's key. */
    @Override
    public void sendBarrier(long sequence, long checkpointId, List<byte[]> evict, Answers whileWaiting)
            throws IOException {
        int length = Long.BYTES;
        for (byte[] key : evict) {
            length += RecordKeys.prefixLength(key);
        }
        long body = claim(FrameType.BARRIER, 0, sequence, length, whileWaiting);
        MemorySegment ring = inputs.segment();
        ring.set(ValueLayout.JAVA_LONG_UNALIGNED, body, checkpointId);
        long at = body + Long.BYTES;
        for (byte[] key : evict) {
            RecordKeys.write(ring, at, key);
            at += RecordKeys.prefixLength(key);
        }
        written();
    }

    /** An input whose body is one i64. */
    private void sendLong(int type, long sequence, long value, Answers whileWaiting) throws IOException {
        long body = claim(type, 0, sequence, Long.BYTES, whileWaiting);
        inputs.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, body, value);
        written();
    }

    /**
     * Claims room for an input; while the ring is full, the worker's answers are taken so it can go on, and
     * the session fails when none has come for {@code workerTimeoutMillis}.
     */
    private long claim(int type, int flags, long sequence, int bodyLength, Answers whileWaiting)
            throws IOException {
        long body;
        long lastAnswer = System.nanoTime();
        while ((body = inputs.tryClaim(type, flags, sequence, bodyLength)) < 0) {
            if (drain(whileWaiting)) {
                lastAnswer = System.nanoTime();
                continue;
            }
            if (System.nanoTime() - lastAnswer > TimeUnit.MILLISECONDS.toNanos(workerTimeoutMillis)) {
                throw new WorkerLostException(sessionName + ": no room for " + FrameType.name(type) + " #" + sequence
                        + " in the to-worker ring and no answer from the worker for " + workerTimeoutMillis
                        + " ms (worker_timeout_ms): its step hangs or is far too slow, although its heartbeat"
                        + " goes on");
            }
            inputs.awaitSpace(TimeUnit.MILLISECONDS.toNanos(CHECK_MILLIS));
            checkWorkerAlive();
        }
        return body;
    }

    /** Publishes a full batch, or whatever is written when the worker has nothing left to do. */
    private void written() {
        if (++unpublished >= PUBLISH_EVERY || inputs.consumerCaughtUp()) {
            flush();
        }
    }

    @Override
    public boolean workerStopped() {
        return ring.peerStopped();
    }

    @Override
    public void flush() {
        inputs.publish();
        unpublished = 0;
    }

    @Override
    public boolean poll(Answers to, long timeoutNanos) throws IOException {
        if (drain(to)) {
            return true;
        }
        if (timeoutNanos <= 0) {
            return false;
        }
        flush();
        long deadline = System.nanoTime() + timeoutNanos;
        while (true) {
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0) {
                return false;
            }
            answers.awaitFrames(Math.min(remaining, TimeUnit.MILLISECONDS.toNanos(CHECK_MILLIS)));
            if (drain(to)) {
                return true;
            }
            checkWorkerAlive();
        }
    }

    /** Hands every published answer to {@code to}; returns whether there was any. */
    private boolean drain(Answers to) throws IOException {
        receiver = to;
        boolean any = false;
        try {
            while (answers.poll(this, POLL_FRAMES) > 0) {
                any = true;
            }
        } catch (RingException corrupt) {
            // Its message names the ring, the position and the fault; this names the session as well.
            throw new RingException(sessionName + ": " + corrupt.getMessage());
        }
        if (watcher != null && watcher.polled()) {
            checkWorkerAlive();
        }
        return any;
    }

    @Override
    public void onAnswersWaiting(Runnable wakeUp) {
        if (watcher != null) {
            throw new IllegalStateException(sessionName + ": answers are watched already");
        }
        watcher = new ShmAnswerWatcher(ring.fromWorkerWatch(), wakeUp, () -> workerLost() != null, sessionName,
                TimeUnit.MILLISECONDS.toNanos(CHECK_MILLIS));
    }

    @Override
    public void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length)
            throws IOException {
        switch (type) {
            case FrameType.OUTPUT -> receiver.output(sequence, RecordCodec.read(file, offset, length, BridgeRecord::fromWire));
            case FrameType.END_OF_OUTPUTS -> receiver.endOfOutputs(sequence);
            case FrameType.ERROR -> receiver.error(sequence, new String(
                    file.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
            case FrameType.INPUT_FAILED -> receiver.inputFailed(sequence, InputFailures.read(file, offset, length));
            case FrameType.CELL_WRITES -> receiver.cellWrites(sequence, cellWrites(file, offset, length, sequence));
            case FrameType.TIMERS -> receiver.timers(sequence, timerChanges(file, offset, length, sequence));
            default -> throw new IOException(sessionName + ": the worker sent a " + FrameType.name(type)
                    + " frame (sequence " + sequence + "), which a worker never sends");
        }
    }

    private KeyCells cellWrites(MemorySegment file, long offset, int length, long sequence) throws IOException {
        try {
            return CellFrames.parse(file.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
        } catch (IOException corrupt) {
            throw new IOException(sessionName + ": the worker's CELL_WRITES frame (sequence " + sequence + "): "
                    + corrupt.getMessage(), corrupt);
        }
    }

    private TimerChanges timerChanges(MemorySegment file, long offset, int length, long sequence) throws IOException {
        try {
            return TimerChanges.parseFrom(file.asSlice(offset, length).asByteBuffer());
        } catch (InvalidProtocolBufferException corrupt) {
            throw new IOException(sessionName + ": the worker's TIMERS frame (sequence " + sequence + ", " + length
                    + " bytes) is no TimerChanges message: " + corrupt.getMessage(), corrupt);
        }
    }

    private void checkWorkerAlive() throws IOException {
        String lost = workerLost();
        if (lost != null) {
            throw new WorkerLostException(sessionName + ": the worker is gone: " + lost);
        }
    }

    /** Why the worker is gone, or null while it is there. */
    private String workerLost() {
        // The stop flag before the exit: a worker that stopped as asked goes on to exit, and the flag says why.
        String exit = workerStopped() ? null : workerExit.get();
        return exit != null ? exit : ring.peerLost(livenessTimeoutMillis);
    }

    @Override
    public long toWorkerRingBytes() {
        return occupancy(true);
    }

    @Override
    public long fromWorkerRingBytes() {
        return occupancy(false);
    }

    /** Read by a metrics reporter, which may find the session already closed and its ring unmapped: then none. */
    private long occupancy(boolean toWorker) {
        try {
            return toWorker ? ring.toWorkerUsedBytes() : ring.fromWorkerUsedBytes();
        } catch (IllegalStateException closed) {
            return 0;
        }
    }

    /** Tells the worker the bridge left, unmaps the ring and removes its file. */
    @Override
    public void close() {
        if (watcher != null) {
            watcher.stop();
        }
        try {
            ring.close();
        } catch (IOException e) {
            LOG.warn("{}: removing its ring file {} failed", sessionName, ring.path(), e);
        }
    }
}
