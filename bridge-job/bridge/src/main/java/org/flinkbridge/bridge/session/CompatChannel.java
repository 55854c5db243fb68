package org.flinkbridge.bridge.session;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.proto.compat.FlinkWorkerServiceGrpc;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.compat.ProcessMessageRequest;
import org.flinkbridge.proto.compat.ProcessMessageResponse;
import org.flinkbridge.proto.compat.ProcessWatermarkRequest;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.transport.grpc.GrpcChannels;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;

/**
 * The prototype's unary service: one blocking call per input, because the prototype's worker gives no
 * ordering between concurrent calls and its segments may keep state. Here for compatibility, not speed.
 */
final class CompatChannel implements WorkerChannel {

    private final FlinkWorkerServiceGrpc.FlinkWorkerServiceBlockingStub stub;
    private final int segmentId;
    private final long timeoutMillis;
    private final ArrayDeque<Answer> answered = new ArrayDeque<>();

    CompatChannel(ManagedChannel channel, int segmentId, long timeoutMillis) {
        this.stub = FlinkWorkerServiceGrpc.newBlockingStub(channel);
        this.segmentId = segmentId;
        this.timeoutMillis = timeoutMillis;
    }

    @Override
    public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting) {
        answer(sequence, () -> deadline().processMessage(ProcessMessageRequest.newBuilder()
                .setMessage(GrpcStreamChannel.toMessage(record))
                .setSegmentId(segmentId)
                .build()));
    }

    @Override
    public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) {
        answer(sequence, () -> deadline().processWatermark(ProcessWatermarkRequest.newBuilder()
                .setTimestamp(timestamp)
                .setSegmentId(segmentId)
                .build()));
    }

    /** The prototype's service has no barrier: with one blocking call per input, every input is answered. */
    @Override
    public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) {
        answered.add(new Answer(sequence, ProcessMessageResponse.getDefaultInstance(), null));
    }

    /** The prototype's service has no way to say it stopped as asked. */
    @Override
    public boolean workerStopped() {
        return false;
    }

    /** The prototype's service has no clock: its segments read their own. */
    @Override
    public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) {
        answered.add(new Answer(sequence, ProcessMessageResponse.getDefaultInstance(), null));
    }

    private FlinkWorkerServiceGrpc.FlinkWorkerServiceBlockingStub deadline() {
        return stub.withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS);
    }

    private void answer(long sequence, java.util.function.Supplier<ProcessMessageResponse> call) {
        try {
            answered.add(new Answer(sequence, call.get(), null));
        } catch (StatusRuntimeException e) {
            answered.add(new Answer(sequence, null, "call failed: " + GrpcChannels.describe(e.getStatus())));
        }
    }

    @Override
    public void flush() {
        // every call has completed by the time send returns
    }

    @Override
    public boolean poll(Answers answers, long timeoutNanos) throws IOException {
        boolean any = !answered.isEmpty();
        Answer answer;
        while ((answer = answered.poll()) != null) {
            if (answer.error != null) {
                answers.error(answer.sequence, answer.error);
                continue;
            }
            for (Message message : answer.response.getMessagesList()) {
                answers.output(answer.sequence, GrpcStreamChannel.toRecord(message));
            }
            answers.endOfOutputs(answer.sequence);
        }
        return any;
    }

    /** Every answer comes back within the call that sent its input: nothing ever waits. */
    @Override
    public void onAnswersWaiting(Runnable wakeUp) {}

    @Override
    public void close() {
        answered.clear();
    }

    private record Answer(long sequence, ProcessMessageResponse response, String error) {}
}
