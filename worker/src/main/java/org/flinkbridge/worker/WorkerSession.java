package org.flinkbridge.worker;

import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.FrameStreamService;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.SortedMap;

/**
 * One bridge function subtask's session: its segment logic, fed strictly in order, whatever the transport.
 * Every input gets its outputs followed by an end of outputs, or an error; after an error the session
 * refuses further input, because the bridge fails the task and Flink restarts from the last checkpoint.
 *
 * <p>Inputs come from the session's data plane (a gRPC stream, or the ring loop of an shm session) and
 * control calls (snapshot, restore, close) on other threads; the bridge only asks for a snapshot once every
 * earlier input is answered, and the monitor keeps the two apart.
 */
final class WorkerSession implements FrameStreamService.SessionHandler {

    private static final Logger LOG = LoggerFactory.getLogger(WorkerSession.class);

    /** Where a session's answers go: the transport's encoding of them. */
    interface Answers {
        void output(long sequence, Record output) throws IOException;

        void endOfOutputs(long sequence) throws IOException;

        void error(long sequence, String message) throws IOException;
    }

    /** One input's effect on the logic, its outputs going to the emitter. */
    @FunctionalInterface
    private interface Input {
        void apply(Emitter outputs) throws Exception;
    }

    private final String id;
    private final String token;
    private final String name;
    private final KeyGroupInstances logic;
    private AutoCloseable dataPlane;
    private String failure;
    private boolean closed;

    WorkerSession(String id, String token, SessionIdentity identity, KeyGroupInstances logic) {
        this.id = id;
        this.token = token;
        this.name = describe(id, identity);
        this.logic = logic;
    }

    static String describe(String id, SessionIdentity identity) {
        return "session " + id + " (job '" + identity.getJobName() + "', operator '"
                + identity.getOperatorName() + "', subtask " + identity.getSubtaskIndex() + "/"
                + identity.getParallelism() + ")";
    }

    String id() {
        return id;
    }

    String name() {
        return name;
    }

    boolean tokenMatches(String presented) {
        return java.security.MessageDigest.isEqual(token.getBytes(), presented.getBytes());
    }

    /** A data plane the session owns (an shm session's ring loop), closed with the session. */
    synchronized void ownDataPlane(AutoCloseable plane) {
        this.dataPlane = plane;
    }

    synchronized boolean ownsDataPlane() {
        return dataPlane != null;
    }

    /** @param keyGroup the record's Flink key group, or {@link KeyGroups#NONE} */
    synchronized void record(long sequence, int keyGroup, Record input, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> logic.forKeyGroup(keyGroup).process(input, outputs));
    }

    synchronized void watermark(long sequence, long timestamp, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> logic.onWatermark(timestamp, outputs));
    }

    /** A flush marker: answered once every earlier input is, which it is by the time it is served. */
    synchronized void barrier(long sequence, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> { });
    }

    private void serve(long sequence, Answers answers, Input input) throws IOException {
        if (failure != null || closed) {
            answers.error(sequence, closed ? "session closed" : "session already failed: " + failure);
            return;
        }
        try {
            input.apply(output -> {
                try {
                    answers.output(sequence, output);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (Exception e) {
            failure = e.toString();
            LOG.warn("{}: input #{} failed", name, sequence, e);
            answers.error(sequence, stackTrace(e));
            return;
        }
        answers.endOfOutputs(sequence);
    }

    private static String stackTrace(Exception e) {
        StringWriter text = new StringWriter();
        e.printStackTrace(new PrintWriter(text));
        return text.toString();
    }

    /** The streamed gRPC data plane: a batch of input frames in, a batch of answer frames out. */
    @Override
    public FrameBatch handle(FrameBatch inputs) {
        FrameBatch.Builder batch = FrameBatch.newBuilder();
        Answers answers = new Answers() {
            @Override
            public void output(long sequence, Record output) {
                batch.addFrames(Frame.newBuilder().setType(FrameType.OUTPUT).setSequence(sequence)
                        .setRecord(WireRecords.message(output)));
            }

            @Override
            public void endOfOutputs(long sequence) {
                batch.addFrames(Frame.newBuilder().setType(FrameType.END_OF_OUTPUTS).setSequence(sequence));
            }

            @Override
            public void error(long sequence, String message) {
                batch.addFrames(Frame.newBuilder().setType(FrameType.ERROR).setSequence(sequence).setError(message));
            }
        };
        try {
            for (Frame input : inputs.getFramesList()) {
                long sequence = input.getSequence();
                switch (input.getType()) {
                    case RECORD -> record(sequence, KeyGroups.fromOptional(input.hasKeyGroup(), input.getKeyGroup()),
                            WireRecords.record(input.getRecord()), answers);
                    case WATERMARK -> watermark(sequence, input.getWatermark(), answers);
                    case BARRIER -> barrier(sequence, answers);
                    default -> serve(sequence, answers, outputs -> {
                        throw new IllegalArgumentException("unexpected frame type " + input.getType()
                                + " from the bridge");
                    });
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("answers into a batch cannot fail", e);
        }
        return batch.build();
    }

    synchronized SortedMap<Integer, byte[]> snapshot() throws Exception {
        return logic.snapshot();
    }

    synchronized void restore(SortedMap<Integer, byte[]> states) throws Exception {
        logic.restore(states);
    }

    synchronized void checkpointFinished(long checkpointId, boolean completed) throws Exception {
        if (completed) {
            logic.checkpointCompleted(checkpointId);
        } else {
            logic.checkpointAborted(checkpointId);
        }
    }

    /** Stops the session's data plane (outside the monitor, since its thread may be waiting for it), then the logic. */
    void close() {
        AutoCloseable plane;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            plane = dataPlane;
        }
        try {
            if (plane != null) {
                plane.close();
            }
        } catch (Exception e) {
            LOG.warn("{}: closing its data plane failed", name, e);
        }
        synchronized (this) {
            try {
                logic.close();
            } catch (Exception e) {
                LOG.warn("{}: closing its logic failed", name, e);
            }
        }
    }
}
