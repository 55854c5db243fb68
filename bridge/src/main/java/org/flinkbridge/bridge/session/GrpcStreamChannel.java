package org.flinkbridge.bridge.session;

import io.grpc.ManagedChannel;
import org.flinkbridge.bridge.BridgeRecord;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.FrameStreamClient;
import org.flinkbridge.transport.grpc.RecordMessages;

import java.io.IOException;

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
    public void sendRecord(long sequence, int keyGroup, BridgeRecord record, Answers whileWaiting)
            throws IOException {
        Frame.Builder frame = Frame.newBuilder()
                .setType(FrameType.RECORD)
                .setSequence(sequence)
                .setRecord(toMessage(record));
        Integer optionalKeyGroup = KeyGroups.toOptional(keyGroup);
        if (optionalKeyGroup != null) {
            frame.setKeyGroup(optionalKeyGroup);
        }
        send(frame.build(), whileWaiting);
    }

    @Override
    public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) throws IOException {
        send(Frame.newBuilder().setType(FrameType.BARRIER).setSequence(sequence)
                .setCheckpointId(checkpointId).build(), whileWaiting);
    }

    @Override
    public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) throws IOException {
        send(Frame.newBuilder().setType(FrameType.WATERMARK).setSequence(sequence)
                .setWatermark(timestamp).build(), whileWaiting);
    }

    private void send(Frame frame, Answers whileWaiting) throws IOException {
        receiver = whileWaiting;
        stream.send(frame, takeWhileWaiting);
    }

    @Override
    public void flush() throws IOException {
        stream.flush(takeWhileWaiting);
    }

    @Override
    public boolean poll(Answers answers, long timeoutNanos) throws IOException {
        FrameBatch batch = stream.poll(timeoutNanos);
        if (batch == null) {
            return false;
        }
        do {
            deliver(batch, answers);
            batch = stream.poll(0);
        } while (batch != null);
        return true;
    }

    private static void deliver(FrameBatch batch, Answers answers) throws IOException {
        for (Frame frame : batch.getFramesList()) {
            switch (frame.getType()) {
                case OUTPUT -> answers.output(frame.getSequence(), toRecord(frame.getRecord()));
                case END_OF_OUTPUTS -> answers.endOfOutputs(frame.getSequence());
                case ERROR -> answers.error(frame.getSequence(), frame.getError());
                default -> throw new IOException("the worker sent a frame of type " + frame.getType()
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

    @Override
    public void onAnswersWaiting(Runnable wakeUp) {
        stream.onArrival(wakeUp);
    }

    @Override
    public void close() {
        stream.close();
    }
}
