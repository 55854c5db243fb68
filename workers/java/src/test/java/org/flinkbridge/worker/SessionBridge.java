package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.protocol.RecordKeys;
import org.flinkbridge.transport.grpc.FrameStreamClient;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.transport.shm.RingProducer;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How a test plays the bridge of one session on one transport, over a ring or over the gRPC stream: its inputs as a
 * bridge sends them (a keyed record carries its key), its answers taken as {@link Answer}s (CellSessionsTest,
 * TimerSessionsTest).
 */
abstract class SessionBridge implements AutoCloseable {

    static final String TOKEN = "6f1c0a9e2b7d4e3f8a5c1b0d9e2f7a6c";
    /** A ring of this size holds frames of at most half of it: 2,032 bytes of body. */
    static final int RING = 4096;

    enum Transport { SHM, GRPC }

    /** An answer frame, either transport's: its type, sequence, text (an output's payload, an error), cells or timers. */
    record Answer(int type, long sequence, String text, KeyCells cells, TimerChanges timers) {
        Answer(int type, long sequence, String text, KeyCells cells) {
            this(type, sequence, text, cells, null);
        }

        @Override
        public String toString() {
            return FrameType.name(type) + " #" + sequence + (text == null ? "" : " " + text)
                    + (cells == null ? "" : " " + cells) + (timers == null ? "" : " " + timers);
        }
    }

    static OpenSessionRequest.Builder request(boolean keyed, StepSpec... steps) {
        return OpenSessionRequest.newBuilder()
                .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                .setIdentity(SessionIdentity.newBuilder().setJobName("test").setOperatorName("op").setParallelism(1))
                .setToken(TOKEN)
                .setKeyed(keyed)
                .addAllSteps(List.of(steps));
    }

    /** A keyed session of {@code steps} opened on {@code control}, played on {@code transport}. */
    static SessionBridge open(Transport transport, Path rings, ManagedChannel channel,
                              BridgeControlGrpc.BridgeControlBlockingStub control, StepSpec... steps)
            throws IOException {
        return transport == Transport.SHM ? new Shm(rings, control, steps) : new Grpc(channel, control, steps);
    }

    /**
     * Opening a session of {@code steps} that is not keyed is refused over either transport, FAILED_PRECONDITION,
     * with a description ending in {@code ending}.
     */
    static void assertRefusedUnkeyed(BridgeControlGrpc.BridgeControlBlockingStub control, String ending,
                                     StepSpec... steps) {
        for (TransportKind transport : List.of(TransportKind.TRANSPORT_KIND_GRPC, TransportKind.TRANSPORT_KIND_SHM)) {
            StatusRuntimeException refused = assertThrows(StatusRuntimeException.class, () -> control.openSession(
                    request(false, steps).setTransport(transport).build()));
            assertEquals(Status.Code.FAILED_PRECONDITION, refused.getStatus().getCode());
            assertTrue(refused.getStatus().getDescription().endsWith(ending), refused.getStatus().getDescription());
        }
    }

    static ByteString bs(String text) {
        return ByteString.copyFromUtf8(text);
    }

    /** The answers taken and not yet received. */
    final List<Answer> received = new ArrayList<>();

    abstract void clock(long sequence, long millis) throws IOException;

    abstract void watermark(long sequence, long timestamp) throws IOException;

    abstract void load(long sequence, KeyCells cells) throws IOException;

    abstract void record(long sequence, int keyGroup, String key, String payload) throws IOException;

    /** A TIMER of {@code key}, in {@code keyGroup}'s instance: {@code firing}. */
    abstract void timer(long sequence, int keyGroup, String key, TimerFiring firing) throws IOException;

    /** A BARRIER naming {@code evict}, the keys to drop once it is answered. */
    abstract void barrier(long sequence, long checkpointId, String... evict) throws IOException;

    /** Takes into {@link #received} the answers that came, waiting a little for some. */
    abstract void awaitAnswers() throws IOException;

    abstract int maxCellFrameBytes();

    /** What OpenSession answered. */
    abstract OpenSessionResponse opened();

    /** Waits for {@code count} answers more (failing after 30 s). */
    List<Answer> receive(int count) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (received.size() < count && System.nanoTime() < deadline) {
            awaitAnswers();
        }
        assertTrue(received.size() >= count, "answers within 30 s: " + received);
        List<Answer> taken = new ArrayList<>(received.subList(0, count));
        received.subList(0, count).clear();
        return taken;
    }

    static final class Shm extends SessionBridge {
        private static final java.util.concurrent.atomic.AtomicInteger RINGS = new java.util.concurrent.atomic.AtomicInteger();
        private final OpenSessionResponse opened;
        final RingFile ring;
        private final RingProducer inputs;
        private final RingConsumer answers;

        Shm(Path rings, BridgeControlGrpc.BridgeControlBlockingStub control, StepSpec... steps) throws IOException {
            // A test may open several sessions: each its own ring file.
            ring = RingFile.create(rings.resolve("s" + RINGS.incrementAndGet() + ".ring"), RING, RING, TOKEN);
            opened = control.openSession(request(true, steps).setTransport(TransportKind.TRANSPORT_KIND_SHM)
                    .setRing(ShmRing.newBuilder().setPath(ring.path().toString()).setToWorkerCapacity(RING)
                            .setFromWorkerCapacity(RING).setLivenessTimeoutMs(5_000)).build());
            inputs = ring.toWorkerProducer();
            answers = ring.fromWorkerConsumer();
        }

        /** Room for a frame, taking answers while the worker catches up. */
        private long claim(int type, int flags, long sequence, int bodyLength) throws IOException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            long body;
            while ((body = inputs.tryClaim(type, flags, sequence, bodyLength)) < 0) {
                inputs.publish();
                take();
                inputs.awaitSpace(TimeUnit.MILLISECONDS.toNanos(10));
                assertTrue(System.nanoTime() < deadline, "no room in the ring for 30 s");
            }
            return body;
        }

        private void longFrame(int type, long sequence, long value) throws IOException {
            long body = claim(type, 0, sequence, Long.BYTES);
            inputs.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, body, value);
            inputs.publish();
        }

        @Override
        void clock(long sequence, long millis) throws IOException {
            longFrame(FrameType.CLOCK, sequence, millis);
        }

        @Override
        void watermark(long sequence, long timestamp) throws IOException {
            longFrame(FrameType.WATERMARK, sequence, timestamp);
        }

        /** The checkpoint id, then each key to evict as an i32 little-endian length and its bytes. */
        @Override
        void barrier(long sequence, long checkpointId, String... evict) throws IOException {
            ByteBuffer body = ByteBuffer.allocate(Long.BYTES + Arrays.stream(evict)
                    .mapToInt(key -> Integer.BYTES + key.getBytes(StandardCharsets.UTF_8).length).sum())
                    .order(ByteOrder.LITTLE_ENDIAN).putLong(checkpointId);
            for (String key : evict) {
                byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
                body.putInt(bytes.length).put(bytes);
            }
            rawFrame(FrameType.BARRIER, sequence, body.array());
        }

        /** A frame of {@code type} whose body is {@code body}, as it is. */
        void rawFrame(int type, long sequence, byte[] body) throws IOException {
            rawFrame(type, 0, sequence, body);
        }

        void rawFrame(int type, int flags, long sequence, byte[] body) throws IOException {
            long at = claim(type, flags, sequence, body.length);
            MemorySegment.copy(body, 0, inputs.segment(), ValueLayout.JAVA_BYTE, at, body.length);
            inputs.publish();
        }

        @Override
        void load(long sequence, KeyCells cells) throws IOException {
            rawFrame(FrameType.LOAD, sequence, cells.toByteArray());
        }

        @Override
        void record(long sequence, int keyGroup, String key, String payload) throws IOException {
            byte[] keyBytes = key.getBytes(StandardCharsets.UTF_8);
            byte[] payloadBytes = payload.getBytes(StandardCharsets.UTF_8);
            int prefix = RecordKeys.prefixLength(keyBytes);
            long body = claim(FrameType.RECORD, keyGroup, sequence,
                    prefix + RecordCodec.bodyLength(Map.of(), payloadBytes));
            RecordKeys.write(inputs.segment(), body, keyBytes);
            RecordCodec.write(inputs.segment(), body + prefix, sequence, Map.of(), payloadBytes);
            inputs.publish();
        }

        /** The key as a keyed RECORD carries it, then the TimerFiring message; the key group in the flags. */
        @Override
        void timer(long sequence, int keyGroup, String key, TimerFiring firing) throws IOException {
            byte[] keyBytes = key.getBytes(StandardCharsets.UTF_8);
            byte[] encoded = firing.toByteArray();
            ByteBuffer body = ByteBuffer.allocate(RecordKeys.prefixLength(keyBytes) + encoded.length)
                    .order(ByteOrder.LITTLE_ENDIAN).putInt(keyBytes.length).put(keyBytes).put(encoded);
            rawFrame(FrameType.TIMER, keyGroup, sequence, body.array());
        }

        void take() throws IOException {
            answers.poll((type, flags, sequence, file, offset, length) -> {
                byte[] body = new byte[length];
                MemorySegment.copy(file, ValueLayout.JAVA_BYTE, offset, body, 0, length);
                received.add(switch (type) {
                    case FrameType.OUTPUT -> new Answer(type, sequence, RecordCodec.read(file, offset, length,
                            (timestamp, headers, payload) -> new String(payload, StandardCharsets.UTF_8)), null);
                    case FrameType.CELL_WRITES -> new Answer(type, sequence, null, KeyCells.parseFrom(body));
                    case FrameType.TIMERS -> new Answer(type, sequence, null, null, TimerChanges.parseFrom(body));
                    case FrameType.ERROR -> new Answer(type, sequence, new String(body, StandardCharsets.UTF_8), null);
                    default -> new Answer(type, sequence, null, null);
                });
            }, 256);
        }

        @Override
        void awaitAnswers() throws IOException {
            take();
            answers.awaitFrames(TimeUnit.MILLISECONDS.toNanos(10));
        }

        @Override
        int maxCellFrameBytes() {
            return RingLayout.maxFrameLength(RING) - RingLayout.FRAME_HEADER;
        }

        @Override
        OpenSessionResponse opened() {
            return opened;
        }

        @Override
        public void close() throws Exception {
            ring.close();
        }
    }

    static final class Grpc extends SessionBridge {
        private final OpenSessionResponse opened;
        private final FrameStreamClient stream;
        private final FrameStreamClient.Answers whileSending = this::take;

        Grpc(ManagedChannel channel, BridgeControlGrpc.BridgeControlBlockingStub control, StepSpec... steps) {
            opened = control.openSession(request(true, steps).setTransport(TransportKind.TRANSPORT_KIND_GRPC).build());
            stream = new FrameStreamClient(channel, opened.getSessionId(), TOKEN, "test", 16, 5_000);
        }

        private void send(Frame.Builder frame) throws IOException {
            stream.send(frame.build(), whileSending);
            stream.flush(whileSending);
        }

        @Override
        void clock(long sequence, long millis) throws IOException {
            send(Frame.newBuilder().setType(org.flinkbridge.proto.data.FrameType.CLOCK).setSequence(sequence)
                    .setProcessingTime(millis));
        }

        @Override
        void watermark(long sequence, long timestamp) throws IOException {
            send(Frame.newBuilder().setType(org.flinkbridge.proto.data.FrameType.WATERMARK).setSequence(sequence)
                    .setWatermark(timestamp));
        }

        @Override
        void load(long sequence, KeyCells cells) throws IOException {
            send(Frame.newBuilder().setType(org.flinkbridge.proto.data.FrameType.LOAD).setSequence(sequence)
                    .setCells(cells));
        }

        @Override
        void record(long sequence, int keyGroup, String key, String payload) throws IOException {
            send(Frame.newBuilder().setType(org.flinkbridge.proto.data.FrameType.RECORD).setSequence(sequence)
                    .setKeyGroup(keyGroup).setKey(bs(key))
                    .setRecord(Message.newBuilder().setPayload(bs(payload)).setTimestamp(sequence)));
        }

        @Override
        void timer(long sequence, int keyGroup, String key, TimerFiring firing) throws IOException {
            send(Frame.newBuilder().setType(org.flinkbridge.proto.data.FrameType.TIMER).setSequence(sequence)
                    .setKeyGroup(keyGroup).setKey(bs(key)).setFiring(firing));
        }

        @Override
        void barrier(long sequence, long checkpointId, String... evict) throws IOException {
            send(Frame.newBuilder().setType(org.flinkbridge.proto.data.FrameType.BARRIER).setSequence(sequence)
                    .setCheckpointId(checkpointId)
                    .addAllEvict(Arrays.stream(evict).map(SessionBridge::bs).toList()));
        }

        private void take(FrameBatch batch) {
            for (Frame frame : batch.getFramesList()) {
                int type = frame.getType().getNumber();
                received.add(switch (type) {
                    case FrameType.OUTPUT -> new Answer(type, frame.getSequence(),
                            frame.getRecord().getPayload().toStringUtf8(), null);
                    case FrameType.CELL_WRITES -> new Answer(type, frame.getSequence(), null, frame.getCells());
                    case FrameType.TIMERS -> new Answer(type, frame.getSequence(), null, null, frame.getTimers());
                    case FrameType.ERROR -> new Answer(type, frame.getSequence(), frame.getError(), null);
                    default -> new Answer(type, frame.getSequence(), null, null);
                });
            }
        }

        @Override
        void awaitAnswers() throws IOException {
            FrameBatch batch = stream.poll(TimeUnit.MILLISECONDS.toNanos(100));
            if (batch != null) {
                take(batch);
            }
        }

        @Override
        int maxCellFrameBytes() {
            return GrpcChannels.MESSAGE_BUDGET_BYTES;
        }

        @Override
        OpenSessionResponse opened() {
            return opened;
        }

        @Override
        public void close() {
            stream.close();
        }
    }
}
