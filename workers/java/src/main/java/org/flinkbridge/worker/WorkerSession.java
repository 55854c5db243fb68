package org.flinkbridge.worker;

import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.SortedMap;

/**
 * One bridge function subtask's session: its segment logic, fed strictly in order. It knows no transport: each
 * data plane (the ring loop of an shm session, the gRPC stream, the prototype's unary service) is an adapter that
 * decodes inputs into {@link #record}, {@link #watermark}, {@link #clock} and {@link #barrier} and encodes the {@link Answers}.
 * Every input gets its outputs followed by an end of outputs, or an error; after an error the session refuses
 * further input, because the bridge fails the task and Flink restarts from the last checkpoint.
 *
 * <p>Inputs come from the data plane's thread and control calls (snapshot, restore, close) from others; the
 * bridge only asks for a snapshot once every earlier input is answered, and the monitor keeps the two apart.
 */
final class WorkerSession {

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
    private final SessionClock clock;
    /** Binds what the steps print to this session's name, around every call into them. */
    private final ScopedValue.Carrier naming;
    private String failure;
    private boolean closed;

    /** @param name how logs and errors name the session ({@link #describe}) */
    WorkerSession(String id, String token, String name, KeyGroupInstances logic, SessionClock clock) {
        this.id = id;
        this.token = token;
        this.name = name;
        this.logic = logic;
        this.clock = clock;
        this.naming = StepOutput.naming(name);
    }

    /**
     * A session of {@code steps}, built once now so that steps that cannot be built refuse it; their instances
     * come per key group later.
     */
    static WorkerSession of(String id, String token, String name, List<StepSpec> steps) throws Exception {
        SessionClock clock = new SessionClock();
        StepOutput.naming(name).call(() -> {
            SegmentInstances.create(steps, name, clock).close();
            return null;
        });
        return new WorkerSession(id, token, name,
                new KeyGroupInstances(() -> SegmentInstances.create(steps, name, clock)), clock);
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

    /** @param keyGroup the record's Flink key group, or {@link KeyGroups#NONE} */
    synchronized void record(long sequence, int keyGroup, Record input, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> logic.forKeyGroup(keyGroup).process(input, outputs));
    }

    synchronized void watermark(long sequence, long timestamp, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> logic.onWatermark(timestamp, outputs));
    }

    /** Processing time advanced to {@code millis}: what steps read from then on; answered with no output. */
    synchronized void clock(long sequence, long millis, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> clock.stamp(millis));
    }

    /** A flush marker: answered once every earlier input is, which it is by the time it is served. */
    synchronized void barrier(long sequence, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> { });
    }

    /** An input the data plane could not make sense of: it fails, and with it the session. */
    synchronized void refuse(long sequence, String why, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> {
            throw new IllegalArgumentException(why);
        });
    }

    private void serve(long sequence, Answers answers, Input input) throws IOException {
        if (failure != null || closed) {
            answers.error(sequence, closed ? "session closed" : "session already failed: " + failure);
            return;
        }
        try {
            naming.call(() -> {
                input.apply(output -> {
                    try {
                        answers.output(sequence, output);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
                return null;
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

    synchronized SortedMap<Integer, byte[]> snapshot() throws Exception {
        return naming.call(logic::snapshot);
    }

    synchronized void restore(SortedMap<Integer, byte[]> states) throws Exception {
        naming.call(() -> {
            logic.restore(states);
            return null;
        });
    }

    synchronized void checkpointFinished(long checkpointId, boolean completed) throws Exception {
        naming.call(() -> {
            if (completed) {
                logic.checkpointCompleted(checkpointId);
            } else {
                logic.checkpointAborted(checkpointId);
            }
            return null;
        });
    }

    /** Closes the logic; its data plane is stopped first by whoever owns it. */
    synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            naming.call(() -> {
                logic.close();
                return null;
            });
        } catch (Exception e) {
            LOG.warn("{}: closing its logic failed", name, e);
        }
    }
}
