package org.flinkbridge.worker;

import org.flinkbridge.proto.control.OnError;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.steps.SegmentChain;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.ArrayList;
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

        /** Input {@code sequence}, a record, failed in a dead-letter step: its one answer. */
        void inputFailed(long sequence, String step, String errorClass, String message) throws IOException;

        /** @throws IOException naming the size when {@code output} cannot be encoded as an answer */
        void checkEncodable(Record output) throws IOException;
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
    /** The segment's steps, by their place in it: what a failed step says of its records. */
    private final List<StepSpec> steps;
    /** Whether a step has on_error: dead_letter, so a record's outputs are held until it is done. */
    private final boolean holdsOutputs;
    /** A record's outputs, held until it is done, when the segment has dead-letter steps; reused. */
    private final List<Record> held = new ArrayList<>();
    /** Binds what the steps print to this session's name, around every call into them. */
    private final ScopedValue.Carrier naming;
    private String failure;
    private boolean closed;

    /** @param name how logs and errors name the session ({@link #describe}) */
    WorkerSession(String id, String token, String name, KeyGroupInstances logic, SessionClock clock,
                  List<StepSpec> steps) {
        this.id = id;
        this.token = token;
        this.name = name;
        this.logic = logic;
        this.clock = clock;
        this.steps = List.copyOf(steps);
        this.holdsOutputs = steps.stream().anyMatch(step -> step.getOnError() == OnError.ON_ERROR_DEAD_LETTER);
        this.naming = StepOutput.naming(name);
    }

    /**
     * A session of {@code steps}, built once now so that steps that cannot be built refuse it; their instances
     * come per key group later.
     */
    static WorkerSession of(String id, String token, String name, List<StepSpec> steps) throws Exception {
        SessionClock clock = new SessionClock();
        KeyGroupInstances logic = StepOutput.naming(name).call(() -> KeyGroupInstances.of(steps, name, clock,
                new SessionCells(clock)));
        return new WorkerSession(id, token, name, logic, clock, steps);
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
        if (!holdsOutputs) {
            serve(sequence, answers, outputs -> logic.forKeyGroup(keyGroup).process(input, outputs));
        } else {
            serveHolding(sequence, keyGroup, input, answers);
        }
    }

    /**
     * A record of a segment with dead-letter steps: its outputs are held until it is done, so that a failure in
     * such a step answers it with INPUT_FAILED alone and the session goes on.
     */
    private void serveHolding(long sequence, int keyGroup, Record input, Answers answers) throws IOException {
        held.clear();
        serve(sequence, answers, outputs -> {
            try {
                logic.forKeyGroup(keyGroup).process(input, output -> {
                    try {
                        answers.checkEncodable(output);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                    held.add(output);
                });
            } catch (SegmentChain.StepFailure e) {
                StepSpec step = steps.get(e.step());
                if (step.getOnError() != OnError.ON_ERROR_DEAD_LETTER) {
                    throw e;
                }
                Throwable cause = e.getCause();
                // The answer carries the error; a text too long for it is cut there, so the log keeps it whole.
                if (ErrorTexts.encodedLength(String.valueOf(cause.getMessage())) > ErrorTexts.MAX_BYTES) {
                    LOG.info("{}: input #{} failed in step '{}', a dead letter", name, sequence, step.getName(), cause);
                } else {
                    LOG.debug("{}: input #{} failed in step '{}', a dead letter: {}", name, sequence, step.getName(),
                            cause.toString());
                }
                held.clear();
                answers.inputFailed(sequence, step.getName(), cause.getClass().getName(), String.valueOf(
                        cause.getMessage()));
                throw new AnsweredFailure();
            }
            for (Record output : held) {
                outputs.emit(output);
            }
        });
    }

    /** Ends an input that a dead letter already answered, with nothing more to send for it. */
    private static final class AnsweredFailure extends RuntimeException {
        AnsweredFailure() {
            super(null, null, false, false);
        }
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
        } catch (AnsweredFailure answered) {
            return;
        } catch (Exception e) {
            // Which step failed matters only for dead letters: the error names the step's own exception.
            Exception reported = SegmentChain.StepFailure.stepException(e);
            failure = reported.toString();
            LOG.warn("{}: input #{} failed", name, sequence, reported);
            answers.error(sequence, stackTrace(reported));
            return;
        }
        answers.endOfOutputs(sequence);
    }

    private static String stackTrace(Throwable e) {
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
