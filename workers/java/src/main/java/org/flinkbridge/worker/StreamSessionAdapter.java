package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.proto.data.InputFailure;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.FrameStreamService;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.timers.SessionTimers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/** The streamed gRPC data plane of a session: a batch of input frames in, a batch of answer frames out. */
final class StreamSessionAdapter implements FrameStreamService.SessionHandler {

    private final WorkerSession session;
    private final java.util.function.Consumer<Runnable> stopRegistry;

    /** @param stopRegistry keeps what ends the stream, for when the worker is asked to stop */
    StreamSessionAdapter(WorkerSession session, java.util.function.Consumer<Runnable> stopRegistry) {
        this.session = session;
        this.stopRegistry = stopRegistry;
    }

    @Override
    public void onStopAsked(Runnable endStream) {
        stopRegistry.accept(endStream);
    }

    @Override
    public FrameBatch handle(FrameBatch inputs) {
        BatchAnswers answers = new BatchAnswers();
        try {
            for (Frame input : inputs.getFramesList()) {
                long sequence = input.getSequence();
                switch (input.getType()) {
                    case RECORD -> session.record(sequence,
                            KeyGroups.fromOptional(input.hasKeyGroup(), input.getKeyGroup()),
                            session.keyed() ? input.getKey().toByteArray() : null,
                            WireRecords.record(input.getRecord()), answers);
                    case TIMER -> session.timer(sequence,
                            KeyGroups.fromOptional(input.hasKeyGroup(), input.getKeyGroup()),
                            session.keyed() ? input.getKey().toByteArray() : null, input.getFiring(), answers);
                    case LOAD -> session.load(sequence, input.getCells());
                    case WATERMARK -> session.watermark(sequence, input.getWatermark(), answers);
                    case BARRIER -> session.barrier(sequence, evicted(input), answers);
                    case CLOCK -> session.clock(sequence, input.getProcessingTime(), answers);
                    default -> session.refuse(sequence, "the bridge sent a frame of type " + input.getType()
                            + ", which a bridge never sends", answers);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("answers into a batch cannot fail", e);
        }
        return answers.batch.build();
    }

    /** The keys a BARRIER frame names for eviction (its {@code evict}). */
    private static List<byte[]> evicted(Frame barrier) {
        if (barrier.getEvictCount() == 0) {
            return List.of();
        }
        List<byte[]> keys = new ArrayList<>(barrier.getEvictCount());
        for (ByteString key : barrier.getEvictList()) {
            keys.add(key.toByteArray());
        }
        return keys;
    }

    /** Answers as frames of one batch. */
    private static final class BatchAnswers implements WorkerSession.Answers {
        final FrameBatch.Builder batch = FrameBatch.newBuilder();

        @Override
        public void output(long sequence, Record output) {
            batch.addFrames(Frame.newBuilder().setType(FrameType.OUTPUT).setSequence(sequence)
                    .setRecord(WireRecords.message(output)));
        }

        @Override
        public void endOfOutputs(long sequence) {
            batch.addFrames(Frame.newBuilder().setType(FrameType.END_OF_OUTPUTS).setSequence(sequence));
        }

        /** The message, cut to what the bridge takes (docs/protocol.md, "Error texts"). */
        @Override
        public void error(long sequence, String message) {
            batch.addFrames(Frame.newBuilder().setType(FrameType.ERROR).setSequence(sequence)
                    .setError(ErrorTexts.cut(message, ErrorTexts.MAX_BYTES)));
        }

        @Override
        public void inputFailed(long sequence, String step, String errorClass, String message) {
            batch.addFrames(Frame.newBuilder().setType(FrameType.INPUT_FAILED).setSequence(sequence)
                    .setFailure(InputFailure.newBuilder().setStep(step).setErrorClass(errorClass)
                            .setMessage(ErrorTexts.cut(message, ErrorTexts.MAX_BYTES))));
        }

        /** A frame of any size fits in a message of its own (a batch is cut before it). */
        @Override
        public void checkEncodable(Record output) {}

        @Override
        public void cellWrites(long sequence, KeyCells writes) {
            batch.addFrames(Frame.newBuilder().setType(FrameType.CELL_WRITES).setSequence(sequence).setCells(writes));
        }

        @Override
        public void timers(long sequence, SessionTimers timers) {
            batch.addFrames(Frame.newBuilder().setType(FrameType.TIMERS).setSequence(sequence)
                    .setTimers(timers.toProto()));
        }

        /** A batch is cut once it holds the budget, so a frame of up to the budget keeps it well under the limit. */
        @Override
        public int maxCellWritesBytes() {
            return GrpcChannels.MESSAGE_BUDGET_BYTES;
        }
    }
}
