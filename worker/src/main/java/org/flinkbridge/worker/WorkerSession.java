package org.flinkbridge.worker;

import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.transport.grpc.FrameStreamService;
import org.flinkbridge.worker.sdk.Segment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.PrintWriter;
import java.io.StringWriter;

/**
 * One bridge function subtask's session: its segment logic, fed strictly in order. Every input frame gets
 * its outputs followed by END_OF_OUTPUTS, or an ERROR; after an error the session refuses further input,
 * because the bridge fails the task and Flink restarts from the last checkpoint.
 *
 * <p>Data frames and control calls (snapshot, restore) come on different threads; the bridge only asks for
 * a snapshot once every earlier input is answered, and the monitor keeps the two apart.
 */
final class WorkerSession implements FrameStreamService.SessionHandler {

    private static final Logger LOG = LoggerFactory.getLogger(WorkerSession.class);

    private final String id;
    private final String token;
    private final String name;
    private final Segment logic;
    private String failure;

    WorkerSession(String id, String token, SessionIdentity identity, Segment logic) {
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

    @Override
    public synchronized FrameBatch handle(FrameBatch inputs) {
        FrameBatch.Builder answers = FrameBatch.newBuilder();
        for (Frame input : inputs.getFramesList()) {
            handle(input, answers);
        }
        return answers.build();
    }

    private void handle(Frame input, FrameBatch.Builder answers) {
        long sequence = input.getSequence();
        if (failure != null) {
            answers.addFrames(error(sequence, "session already failed: " + failure));
            return;
        }
        try {
            switch (input.getType()) {
                case RECORD -> logic.process(Messages.toRecord(input.getRecord()), output -> answers.addFrames(
                        Frame.newBuilder().setType(FrameType.OUTPUT).setSequence(sequence)
                                .setRecord(Messages.toMessage(output))));
                case WATERMARK -> logic.onWatermark(input.getWatermark(), output -> answers.addFrames(
                        Frame.newBuilder().setType(FrameType.OUTPUT).setSequence(sequence)
                                .setRecord(Messages.toMessage(output))));
                case BARRIER -> { } // every earlier input is answered once this one is
                default -> throw new IllegalArgumentException(
                        "unexpected frame type " + input.getType() + " from the bridge");
            }
            answers.addFrames(Frame.newBuilder().setType(FrameType.END_OF_OUTPUTS).setSequence(sequence));
        } catch (Exception e) {
            failure = e.toString();
            LOG.warn("{}: input #{} failed", name, sequence, e);
            answers.addFrames(error(sequence, stackTrace(e)));
        }
    }

    private static Frame error(long sequence, String message) {
        return Frame.newBuilder().setType(FrameType.ERROR).setSequence(sequence).setError(message).build();
    }

    private static String stackTrace(Exception e) {
        StringWriter text = new StringWriter();
        e.printStackTrace(new PrintWriter(text));
        return text.toString();
    }

    synchronized byte[] snapshot() throws Exception {
        return logic.snapshotState();
    }

    synchronized void restore(byte[] state) throws Exception {
        logic.restoreState(state);
    }

    @Override
    public void streamEnded() {
        LOG.debug("{}: data stream ended", name);
    }

    synchronized void close() {
        try {
            logic.close();
        } catch (Exception e) {
            LOG.warn("{}: closing its logic failed", name, e);
        }
    }
}
