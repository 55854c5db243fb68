package org.flinkbridge.bridge.session;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.transport.grpc.FrameStreamClient;
import org.flinkbridge.transport.grpc.RecordMessages;

import java.io.IOException;
import java.util.List;

/** The streamed gRPC data plane: batched frames over one bidirectional stream. */
final class GrpcStreamChannel implements WorkerChannel {

    private final FrameStreamClient stream;
    /** Where answers that arrive while a send waits go: the answers given with the last input. */
    private Answers receiver;
    private final FrameStreamClient.Answers takeWhileWaiting = batch -> deliver(batch, receiver);

    GrpcStreamChannel(ManagedChannel channel, String sessionId, String token, String sessionName,
                      int maxBatchFrames, long timeoutMillis) {
        this.stream = new FrameStreamClient(channel, sessionId, token, sessionName, maxBatchFrames, timeoutMillis);
    }

    @Override
    public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting)
            throws IOException {
        Frame.Builder frame = Frame.newBuilder()
                .setType(FrameType.RECORD)
                .setSequence(sequence)
                .setRecord(toMessage(record));
        if (key != null) {
            frame.setKey(ByteString.copyFrom(key));
        }
        Integer optionalKeyGroup = KeyGroups.toOptional(keyGroup);
        if (optionalKeyGroup != null) {
            frame.setKeyGroup(optionalKeyGroup);
        }
        send(frame.build(), whileWaiting);
    }

    @Override
    public void sendLoad(long sequence, KeyCells cells, Answers whileWaiting) throws IOException {
        send(Frame.newBuilder().setType(FrameType.LOAD).setSequence(sequence).setCells(cells).build(), whileWaiting);
    }

    @Override
    public void sendTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing, Answers whileWaiting)
            throws IOException {
        send(Frame.newBuilder().setType(FrameType.TIMER).setSequence(sequence).setKeyGroup(keyGroup)
                .setKey(ByteString.copyFrom(key)).setFiring(firing).build(), whileWaiting);
    }

    @Override
    public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) throws IOException {
        send(Frame.newBuilder().setType(FrameType.BARRIER).setSequence(sequence)
                .setCheckpointId(checkpointId).build(), whileWaiting);
    }

    @Override
    public void sendBarrier(long sequence, long checkpointId, List<byte[]> evict, Answers whileWaiting)
            throws IOException {
        Frame.Builder frame = Frame.newBuilder().setType(FrameType.BARRIER).setSequence(sequence)
                .setCheckpointId(checkpointId);
        for (byte[] key : evict) {
            frame.addEvict(ByteString.copyFrom(key));
        }
        send(frame.build(), whileWaiting);
    }

    @Override
    public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) throws IOException {
        send(Frame.newBuilder().setType(FrameType.WATERMARK).setSequence(sequence)
                .setWatermark(timestamp).build(), whileWaiting);
    }

    @Override
    public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) throws IOException {
        send(Frame.newBuilder().setType(FrameType.CLOCK).setSequence(sequence)
                .setProcessingTime(processingTimeMillis).build(), whileWaiting);
    }

    private void send(Frame frame, Answers whileWaiting) throws IOException {
        receiver = whileWaiting;
        try {
            stream.send(frame, takeWhileWaiting);
        } catch (IOException e) {
            throw lostUnlessAnswers(e);
        }
    }

    @Override
    public boolean workerStopped() {
        return stream.workerStopped();
    }

    @Override
    public void flush() throws IOException {
        try {
            stream.flush(takeWhileWaiting);
        } catch (IOException e) {
            throw lostUnlessAnswers(e);
        }
    }

    @Override
    public boolean poll(Answers answers, long timeoutNanos) throws IOException {
        FrameBatch batch = nextBatch(timeoutNanos);
        if (batch == null) {
            return false;
        }
        do {
            deliver(batch, answers);
            batch = nextBatch(0);
        } while (batch != null);
        return true;
    }

    private FrameBatch nextBatch(long timeoutNanos) throws WorkerLostException {
        try {
            return stream.poll(timeoutNanos);
        } catch (IOException e) {
            throw new WorkerLostException(e.getMessage(), e);
        }
    }

    /**
     * What the stream raised: the stream's own failures (it broke, ended or took nothing in time) mean the worker
     * is lost; a bad frame among the answers handed over while waiting stays what it is.
     */
    private static IOException lostUnlessAnswers(IOException e) {
        return e instanceof BadAnswer ? e : new WorkerLostException(e.getMessage(), e);
    }

    private static void deliver(FrameBatch batch, Answers answers) throws IOException {
        for (Frame frame : batch.getFramesList()) {
            switch (frame.getType()) {
                case OUTPUT -> answers.output(frame.getSequence(), toRecord(frame.getRecord()));
                case END_OF_OUTPUTS -> answers.endOfOutputs(frame.getSequence());
                case ERROR -> answers.error(frame.getSequence(), frame.getError());
                case INPUT_FAILED -> answers.inputFailed(frame.getSequence(), new InputFailures.Failure(
                        frame.getFailure().getStep(), frame.getFailure().getErrorClass(),
                        frame.getFailure().getMessage()));
                case CELL_WRITES -> answers.cellWrites(frame.getSequence(), frame.getCells());
                case TIMERS -> answers.timers(frame.getSequence(), frame.getTimers());
                default -> throw new BadAnswer("the worker sent a frame of type " + frame.getType()
                        + " (sequence " + frame.getSequence() + "), which a worker never sends");
            }
        }
    }

    static Message toMessage(BridgeRecord record) {
        return RecordMessages.message(record.timestamp, record.headers, record.payload);
    }

    static BridgeRecord toRecord(Message message) {
        return RecordMessages.read(message, BridgeRecord::fromWire);
    }

    /** A frame a worker never sends. */
    private static final class BadAnswer extends IOException {
        BadAnswer(String message) {
            super(message);
        }
    }

    @Override
    public void onAnswersWaiting(Runnable wakeUp) {
        stream.onArrival(wakeUp);
    }

    @Override
    public void close() {
        stream.close();
    }
}
