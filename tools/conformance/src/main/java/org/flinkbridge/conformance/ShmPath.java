package org.flinkbridge.conformance;

import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.protocol.RecordKeys;
import org.flinkbridge.transport.grpc.CellFrames;
import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.transport.shm.RingProducer;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The shm data plane of a session: the kit writes the to-worker ring and reads the from-worker ring. */
final class ShmPath implements DataPath, FrameHandler {

    /** How long the worker's heartbeat may be silent before the kit counts it as gone. */
    static final long LIVENESS_MILLIS = 2_000;
    private static final long WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final RingFile ring;
    private final RingProducer inputs;
    private final RingConsumer answers;
    private final AnswerLog received = new AnswerLog();

    ShmPath(RingFile ring) {
        this.ring = ring;
        this.inputs = ring.toWorkerProducer();
        this.answers = ring.fromWorkerConsumer();
    }

    @Override
    public void record(long sequence, int keyGroup, KitRecord record) throws IOException {
        long body = claim(FrameType.RECORD, KeyGroups.toRingFlags(keyGroup), sequence,
                RecordCodec.bodyLength(record.headers(), record.payload()));
        RecordCodec.write(inputs.segment(), body, record.timestamp(), record.headers(), record.payload());
        inputs.publish();
    }

    @Override
    public void record(long sequence, int keyGroup, byte[] key, KitRecord record) throws IOException {
        int prefix = RecordKeys.prefixLength(key);
        long body = claim(FrameType.RECORD, KeyGroups.toRingFlags(keyGroup), sequence,
                prefix + RecordCodec.bodyLength(record.headers(), record.payload()));
        RecordKeys.write(inputs.segment(), body, key);
        RecordCodec.write(inputs.segment(), body + prefix, record.timestamp(), record.headers(), record.payload());
        inputs.publish();
    }

    /** Its body is the key behind its length, as a keyed record's, then the {@code TimerFiring}'s encoding. */
    @Override
    public void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing) throws IOException {
        byte[] encoded = firing.toByteArray();
        int prefix = RecordKeys.prefixLength(key);
        long body = claim(FrameType.TIMER, KeyGroups.toRingFlags(keyGroup), sequence, prefix + encoded.length);
        RecordKeys.write(inputs.segment(), body, key);
        MemorySegment.copy(encoded, 0, inputs.segment(), ValueLayout.JAVA_BYTE, body + prefix, encoded.length);
        inputs.publish();
    }

    /** Its body is the {@code KeyCells} message's protobuf encoding. */
    @Override
    public void load(long sequence, KeyCells cells) throws IOException {
        byte[] encoded = cells.toByteArray();
        long body = claim(FrameType.LOAD, 0, sequence, encoded.length);
        MemorySegment.copy(encoded, 0, inputs.segment(), ValueLayout.JAVA_BYTE, body, encoded.length);
        inputs.publish();
    }

    @Override
    public void watermark(long sequence, long timestamp) throws IOException {
        writeLong(FrameType.WATERMARK, sequence, timestamp);
    }

    @Override
    public void barrier(long sequence, long checkpointId) throws IOException {
        writeLong(FrameType.BARRIER, sequence, checkpointId);
    }

    @Override
    public void barrier(long sequence, long checkpointId, List<byte[]> evict) throws IOException {
        int length = Long.BYTES;
        for (byte[] key : evict) {
            length += RecordKeys.prefixLength(key);
        }
        long body = claim(FrameType.BARRIER, 0, sequence, length);
        inputs.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, body, checkpointId);
        long at = body + Long.BYTES;
        for (byte[] key : evict) {
            RecordKeys.write(inputs.segment(), at, key);
            at += RecordKeys.prefixLength(key);
        }
        inputs.publish();
    }

    @Override
    public void clock(long sequence, long processingTimeMillis) throws IOException {
        writeLong(FrameType.CLOCK, sequence, processingTimeMillis);
    }

    private void writeLong(int type, long sequence, long value) throws IOException {
        long body = claim(type, 0, sequence, Long.BYTES);
        inputs.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, body, value);
        inputs.publish();
    }

    @Override
    public void misbehave(Misbehaviour how, long sequence) throws IOException {
        MemorySegment file = inputs.segment();
        switch (how) {
            case CORRUPT_RECORD_BODY -> {
                long body = emptyRecord(FrameType.RECORD, KeyGroups.toRingFlags(KeyGroups.NONE), sequence);
                // Its header count: far more headers than the body holds.
                file.set(ValueLayout.JAVA_INT_UNALIGNED, body + Long.BYTES, 1_000_000);
            }
            case OVERSIZE_FRAME -> {
                long body = claim(FrameType.WATERMARK, 0, sequence, Long.BYTES);
                // The frame claims more than was published, and more than half the ring a frame may take.
                file.set(ValueLayout.JAVA_INT_UNALIGNED, body - RingLayout.FRAME_HEADER + RingLayout.FRAME_LENGTH,
                        inputs.maxFrameLength() + RingLayout.FRAME_ALIGNMENT);
            }
            case FOREIGN_FRAME_TYPE -> emptyRecord(FrameType.OUTPUT, 0, sequence);
        }
        inputs.publish();
    }

    /** Writes a frame of {@code type} holding a record with no headers and no payload; returns its body's offset. */
    private long emptyRecord(int type, int flags, long sequence) throws IOException {
        byte[] none = new byte[0];
        long body = claim(type, flags, sequence, RecordCodec.bodyLength(Map.of(), none));
        RecordCodec.write(inputs.segment(), body, 0, Map.of(), none);
        return body;
    }

    private long claim(int type, int flags, long sequence, int bodyLength) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        long body;
        while ((body = inputs.tryClaim(type, flags, sequence, bodyLength)) < 0) {
            // The worker may wait for room for its answers: take them so it can go on.
            drain();
            checkAlive();
            if (System.nanoTime() > deadline) {
                throw new IOException("no room in the to-worker ring for 30 s: the worker takes no input");
            }
            inputs.awaitSpace(WAIT_NANOS);
        }
        return body;
    }

    @Override
    public List<Answer> answersThrough(long sequence, long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            drain();
            List<Answer> through = received.takeThrough(sequence);
            if (through != null) {
                return through;
            }
            checkAlive();
            if (System.nanoTime() > deadline) {
                throw received.timedOut(sequence, timeoutMillis);
            }
            answers.awaitFrames(WAIT_NANOS);
        }
    }

    private void drain() throws IOException {
        while (answers.poll(this, 1024) > 0) {
            // onFrame collects them
        }
    }

    private void checkAlive() throws IOException {
        String lost = ring.peerLost(LIVENESS_MILLIS);
        if (lost != null) {
            // Answers published before the flag was set are all there now.
            drain();
            throw new SessionEnded(lost);
        }
    }

    @Override
    public boolean endedAsStopped() {
        return ring.peerStopped();
    }

    @Override
    public boolean partlyAnswered() {
        return received.partlyAnswered();
    }

    /** Whether the worker has ended the session: it closed the ring, or its heartbeat stopped. */
    String ended() {
        return ring.peerLost(LIVENESS_MILLIS);
    }

    @Override
    public void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length)
            throws IOException {
        received.add(switch (type) {
            case FrameType.OUTPUT -> new Answer(type, sequence, RecordCodec.read(file, offset, length, KitRecord::new),
                    null);
            case FrameType.END_OF_OUTPUTS -> new Answer(type, sequence, null, null);
            case FrameType.ERROR -> new Answer(type, sequence, null,
                    new String(file.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
            case FrameType.INPUT_FAILED -> new Answer(type, sequence, null, null,
                    InputFailures.read(file, offset, length));
            case FrameType.CELL_WRITES -> new Answer(type, sequence, null, null, null,
                    CellFrames.parse(file.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE)), null);
            case FrameType.TIMERS -> new Answer(type, sequence, null, null, null, null,
                    TimerChanges.parseFrom(file.asSlice(offset, length).asByteBuffer()));
            default -> throw new IOException("the worker sent a " + FrameType.name(type) + " frame (#" + sequence
                    + "), which a worker never sends");
        });
    }

    @Override
    public void close() {
        try {
            ring.close();
        } catch (IOException e) {
            System.err.println("conformance: removing ring " + ring.path() + " failed: " + e.getMessage());
        }
    }
}
