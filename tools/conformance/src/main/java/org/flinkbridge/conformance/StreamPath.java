package org.flinkbridge.conformance;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.FrameStreamClient;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.RecordMessages;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The streamed gRPC data plane of a session: one frame per batch, so every input reaches the worker at once. */
final class StreamPath implements DataPath {

    private final FrameStreamClient stream;
    private final AnswerLog received = new AnswerLog();
    private final FrameStreamClient.Answers collect = this::collect;

    StreamPath(ManagedChannel channel, String sessionId, String token) {
        this.stream = new FrameStreamClient(channel, sessionId, token, "session " + sessionId, 1, 30_000);
    }

    @Override
    public void record(long sequence, int keyGroup, KitRecord record) throws IOException {
        send(recordFrame(sequence, keyGroup, record).build());
    }

    @Override
    public void record(long sequence, int keyGroup, byte[] key, KitRecord record) throws IOException {
        send(recordFrame(sequence, keyGroup, record).setKey(ByteString.copyFrom(key)).build());
    }

    /** A RECORD frame of {@code record}, with its key group where it has one ({@link KeyGroups#toOptional}). */
    private static Frame.Builder recordFrame(long sequence, int keyGroup, KitRecord record) {
        Frame.Builder frame = Frame.newBuilder().setType(FrameType.RECORD).setSequence(sequence)
                .setRecord(RecordMessages.message(record.timestamp(), record.headers(), record.payload()));
        Integer optional = KeyGroups.toOptional(keyGroup);
        if (optional != null) {
            frame.setKeyGroup(optional);
        }
        return frame;
    }

    @Override
    public void load(long sequence, KeyCells cells) throws IOException {
        send(Frame.newBuilder().setType(FrameType.LOAD).setSequence(sequence).setCells(cells).build());
    }

    @Override
    public void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing) throws IOException {
        send(Frame.newBuilder().setType(FrameType.TIMER).setSequence(sequence).setKeyGroup(keyGroup)
                .setKey(ByteString.copyFrom(key)).setFiring(firing).build());
    }

    @Override
    public void watermark(long sequence, long timestamp) throws IOException {
        send(Frame.newBuilder().setType(FrameType.WATERMARK).setSequence(sequence).setWatermark(timestamp).build());
    }

    @Override
    public void barrier(long sequence, long checkpointId) throws IOException {
        send(Frame.newBuilder().setType(FrameType.BARRIER).setSequence(sequence).setCheckpointId(checkpointId)
                .build());
    }

    @Override
    public void barrier(long sequence, long checkpointId, List<byte[]> evict) throws IOException {
        Frame.Builder frame = Frame.newBuilder().setType(FrameType.BARRIER).setSequence(sequence)
                .setCheckpointId(checkpointId);
        for (byte[] key : evict) {
            frame.addEvict(ByteString.copyFrom(key));
        }
        send(frame.build());
    }

    @Override
    public void clock(long sequence, long processingTimeMillis) throws IOException {
        send(Frame.newBuilder().setType(FrameType.CLOCK).setSequence(sequence).setProcessingTime(processingTimeMillis)
                .build());
    }

    @Override
    public void misbehave(Misbehaviour how, long sequence) throws IOException {
        switch (how) {
            case CORRUPT_RECORD_BODY -> throw new IllegalArgumentException("protobuf carries a record body here");
            case OVERSIZE_FRAME -> send(Frame.newBuilder().setType(FrameType.RECORD).setSequence(sequence)
                    .setRecord(Message.newBuilder().setPayload(ByteString.copyFrom(
                            new byte[GrpcChannels.MAX_MESSAGE_BYTES + 1024]))).build());
            case FOREIGN_FRAME_TYPE -> send(Frame.newBuilder().setType(FrameType.OUTPUT).setSequence(sequence)
                    .setRecord(Message.getDefaultInstance()).build());
        }
    }

    private void send(Frame frame) throws IOException {
        try {
            stream.send(frame, collect);
        } catch (AnswerLog.ProtocolViolation violation) {
            throw violation;
        } catch (IOException e) {
            throw new SessionEnded(e.getMessage());
        }
    }

    private void collect(FrameBatch batch) throws IOException {
        for (Frame frame : batch.getFramesList()) {
            int type = frame.getTypeValue();
            received.add(new Answer(type, frame.getSequence(),
                    frame.getType() == FrameType.OUTPUT ? RecordMessages.read(frame.getRecord(), KitRecord::new) : null,
                    frame.getType() == FrameType.ERROR ? frame.getError() : null,
                    frame.getType() == FrameType.INPUT_FAILED ? new InputFailures.Failure(frame.getFailure().getStep(),
                            frame.getFailure().getErrorClass(), frame.getFailure().getMessage()) : null,
                    frame.getType() == FrameType.CELL_WRITES ? frame.getCells() : null,
                    frame.getType() == FrameType.TIMERS ? frame.getTimers() : null));
        }
    }

    @Override
    public List<Answer> answersThrough(long sequence, long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            List<Answer> through = received.takeThrough(sequence);
            if (through != null) {
                return through;
            }
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0) {
                throw received.timedOut(sequence, timeoutMillis);
            }
            FrameBatch batch;
            try {
                batch = stream.poll(Math.min(remaining, TimeUnit.MILLISECONDS.toNanos(100)));
            } catch (IOException e) {
                throw new SessionEnded(e.getMessage());
            }
            if (batch != null) {
                collect(batch);
            }
        }
    }

    @Override
    public boolean endedAsStopped() {
        return stream.workerStopped();
    }

    @Override
    public boolean partlyAnswered() {
        return received.partlyAnswered();
    }

    @Override
    public void close() {
        stream.close();
    }
}
