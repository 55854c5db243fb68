package org.flinkbridge.worker;

import org.flinkbridge.proto.control.OnError;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.CellFrames;
import org.flinkbridge.worker.cells.CellDeclarations;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.steps.SegmentChain;
import org.flinkbridge.worker.timers.SessionTimers;
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
 * decodes inputs into {@link #record}, {@link #timer}, {@link #watermark}, {@link #clock} and {@link #barrier} (and
 * a record's or timer's {@link #load}s) and encodes the {@link Answers}. Every input gets its outputs followed by an end of outputs, or an
 * error; after an error the session refuses further input, because the bridge fails the task and Flink restarts
 * from the last checkpoint.
 *
 * <p>In a keyed session every record carries its key, and the steps' cells are that key's (docs/protocol.md,
 * "Cells"): the bridge loads a key's cells before its first record, and a barrier is answered with what changed. Its
 * steps may set timers of the input's key (docs/protocol.md, "Timers"): a record's or firing's changes are answered
 * in one TIMERS frame before its end marker, and the bridge fires them as TIMER inputs.
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

        /** Part of the answer to BARRIER {@code sequence}: a CELL_WRITES frame of one key's changed cells. */
        void cellWrites(long sequence, KeyCells writes) throws IOException;

        /** The most a CELL_WRITES frame's {@code KeyCells} may take, encoded. */
        int maxCellWritesBytes();

        /**
         * Part of the answer to RECORD or TIMER {@code sequence}, before its end marker: the TIMERS frame of the
         * timer changes {@code timers} holds for it (at least one).
         */
        void timers(long sequence, SessionTimers timers) throws IOException;
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
    private final SessionCells cells;
    private final SessionTimers timers;
    /** The session's records carry their keys. */
    private final boolean keyed;
    /** A LOAD came as part of input {@link #loadedInput}, whose record has not come yet. */
    private boolean loadPending;
    private long loadedInput;
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
                  SessionCells cells, SessionTimers timers, boolean keyed, List<StepSpec> steps) {
        this.id = id;
        this.token = token;
        this.name = name;
        this.logic = logic;
        this.clock = clock;
        this.cells = cells;
        this.timers = timers;
        this.keyed = keyed;
        this.steps = List.copyOf(steps);
        this.holdsOutputs = steps.stream().anyMatch(step -> step.getOnError() == OnError.ON_ERROR_DEAD_LETTER);
        this.naming = StepOutput.naming(name);
    }

    /**
     * A session of {@code steps}, built once now so that steps that cannot be built refuse it, and so that the
     * cells and timers they declare are known; their instances come per key group later.
     *
     * @param keyed the session's records carry their keys ({@code OpenSessionRequest.keyed})
     */
    static WorkerSession of(String id, String token, String name, List<StepSpec> steps, boolean keyed)
            throws Exception {
        SessionClock clock = new SessionClock();
        SessionCells cells = new SessionCells(clock, keyed);
        SessionTimers timers = new SessionTimers(clock);
        KeyGroupInstances logic = StepOutput.naming(name).call(() -> KeyGroupInstances.of(steps, name, clock,
                cells, timers));
        return new WorkerSession(id, token, name, logic, clock, cells, timers, keyed, steps);
    }

    /** The cells the session's steps declared: their ids are their places in this list. */
    CellDeclarations cells() {
        return cells.declarations();
    }

    boolean keyed() {
        return keyed;
    }

    /** Whether the session's steps set timers ({@code OpenSessionResponse.timers}). */
    boolean setsTimers() {
        return timers.declared();
    }

    /**
     * Why a session that is not keyed cannot run these steps, naming the first cell they declare, or else the first
     * step that sets timers; null when it can (it is keyed, or they declare neither).
     */
    String withoutKey() {
        if (keyed) {
            return null;
        }
        if (cells.declared()) {
            CellDeclarations.Declared cell = cells.declarations().get(0);
            return name + ": step '" + cell.step() + "' declares cell '" + cell.name() + "', but the session is not "
                    + "keyed: cells live under the record's key: key the segment with bridge.key";
        }
        if (timers.declared()) {
            return name + ": step '" + timers.firstStep() + "' sets timers, but the session is not keyed: a timer "
                    + "belongs to a key: key the segment with bridge.key";
        }
        return null;
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

    /**
     * @param keyGroup the record's Flink key group, or {@link KeyGroups#NONE}
     * @param key the record's key in a keyed session; null in one that is not
     */
    synchronized void record(long sequence, int keyGroup, byte[] key, Record input, Answers answers)
            throws IOException {
        if (!holdsOutputs) {
            serve(sequence, answers, outputs -> {
                enter(sequence, key, "record");
                try {
                    logic.forKeyGroup(keyGroup).process(input, outputs);
                } finally {
                    leave();
                }
            });
        } else {
            serveHolding(sequence, keyGroup, key, input, answers);
        }
    }

    /**
     * A TIMER: the timer {@code firing} names, of {@code key}, fires in {@code keyGroup}'s instance (docs/protocol.md,
     * "Timers"). Its step's onTimer runs with the key's cells and timers current, what it emits goes through the steps
     * after it, and the answer is a record's: outputs, a TIMERS frame when timers changed, the end marker. Any
     * failure is an ERROR, whatever the step's on_error; so is a TIMER the session's steps cannot have asked for.
     *
     * @param key the timer's key; null when the session is not keyed (then it has no timers)
     */
    synchronized void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing, Answers answers)
            throws IOException {
        serve(sequence, answers, outputs -> {
            TimeDomain domain = firing(sequence, firing);
            enter(sequence, key, "TIMER");
            try {
                logic.onTimer(keyGroup, firing.getStep(), firing.getTimestamp(), domain, outputs);
            } finally {
                leave();
            }
        });
    }

    /** @throws IllegalArgumentException naming why when the session's steps cannot have set this timer */
    private TimeDomain firing(long sequence, TimerFiring firing) {
        String wrong = null;
        int step = firing.getStep();
        if (!timers.declared()) {
            wrong = "the session's steps set no timers";
        } else if (step < 0 || step >= steps.size()) {
            wrong = "it names step " + Integer.toUnsignedString(step) + ", but the session has " + steps.size()
                    + " steps";
        } else if (!timers.declares(step)) {
            wrong = "it names step " + step + " ('" + steps.get(step).getName() + "'), which sets no timers";
        } else if (firing.getDomain() == org.flinkbridge.proto.data.TimeDomain.TIME_DOMAIN_EVENT_TIME) {
            return TimeDomain.EVENT_TIME;
        } else if (firing.getDomain() == org.flinkbridge.proto.data.TimeDomain.TIME_DOMAIN_PROCESSING_TIME) {
            return TimeDomain.PROCESSING_TIME;
        } else {
            wrong = "its time domain is " + (firing.getDomain() == org.flinkbridge.proto.data.TimeDomain.UNRECOGNIZED
                    ? "unknown (" + firing.getDomainValue() + ")" : firing.getDomain());
        }
        loadPending = false;
        throw new IllegalArgumentException("input #" + sequence + ": a TIMER, but " + wrong);
    }

    /**
     * A LOAD, part of record input {@code sequence}: its key's cells, resident from now. It gets no answer of its
     * own: a LOAD that cannot be taken fails the session, and the input's record is answered with that error.
     */
    synchronized void load(long sequence, KeyCells loaded) {
        if (failure != null || closed) {
            return;
        }
        try {
            if (!keyed) {
                throw new IllegalArgumentException("a LOAD, but the session is not keyed");
            }
            if (loadPending && loadedInput != sequence) {
                throw new IllegalArgumentException("a LOAD came as part of input #" + loadedInput
                        + ", whose record never came before this LOAD");
            }
            loadPending = true;
            loadedInput = sequence;
            cells.load(sequence, loaded);
        } catch (RuntimeException e) {
            failure = "input #" + sequence + ": " + e.getMessage();
            LOG.warn("{}: a LOAD of input #{} fails the session: {}", name, sequence, e.getMessage());
        }
    }

    /**
     * Checks that a LOAD, if one came, was part of this input, a record or a timer; and for one of a keyed session
     * makes its key's cells (where its steps keep cells) and timers the current ones, until {@link #leave}.
     *
     * @param key the input's key; null for an input that is no record or timer, or a record of a stream not keyed
     * @param input what the input is, for the error when its key is not resident
     */
    private void enter(long sequence, byte[] key, String input) {
        if (loadPending) {
            loadPending = false;
            if (loadedInput != sequence || key == null) {
                throw new IllegalStateException("a LOAD came as part of input #" + loadedInput + ", but input #"
                        + sequence + " is " + (key == null ? "no record of a keyed stream" : "the next " + input));
            }
        }
        if (key == null) {
            return;
        }
        if (cells.declared() && !cells.enter(key)) {
            throw new IllegalStateException("input #" + sequence + ": the key " + SessionCells.describe(key)
                    + " is not resident in this session: the bridge sent no LOAD of its cells before this " + input);
        }
        timers.enter();
    }

    /** The input {@link #enter} entered is handled: cells and timers are out of reach. */
    private void leave() {
        cells.leave();
        timers.leave();
    }

    /**
     * A record of a segment with dead-letter steps: its outputs are held until it is done, so that a failure in
     * such a step answers it with INPUT_FAILED alone and the session goes on.
     */
    private void serveHolding(long sequence, int keyGroup, byte[] key, Record input, Answers answers)
            throws IOException {
        held.clear();
        serve(sequence, answers, outputs -> {
            enter(sequence, key, "record");
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
            } finally {
                leave();
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
        serve(sequence, answers, outputs -> {
            enter(sequence, null, "watermark");
            timers.watermark(timestamp);
            logic.onWatermark(timestamp, outputs);
        });
    }

    /** Processing time advanced to {@code millis}: what steps read from then on; answered with no output. */
    synchronized void clock(long sequence, long millis, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> {
            enter(sequence, null, "clock");
            clock.stamp(millis);
        });
    }

    /**
     * A flush marker: answered once every earlier input is, which it is by the time it is served, with the cells
     * that changed since the last barrier first (CELL_WRITES frames, one key's writes in one or more). Once it is
     * answered, the keys it names for eviction are dropped from the resident ones (docs/protocol.md, "Eviction"): a
     * key that is not resident is ignored, and a dropped key's next record needs a LOAD again. What the dropped cells
     * took may go back to the system at once ({@link HeapRelease}).
     *
     * @param evict the keys to drop once the barrier is answered; empty for none
     */
    synchronized void barrier(long sequence, List<byte[]> evict, Answers answers) throws IOException {
        answerBarrier(sequence, answers);
        long freed = 0;
        for (byte[] key : evict) {
            freed += Math.max(0, cells.residentBytes(key));
            cells.evict(key);
        }
        HeapRelease.evicted(freed);
    }

    private void answerBarrier(long sequence, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> {
            enter(sequence, null, "barrier");
            if (!cells.declared()) {
                return;
            }
            // Every frame is cut before any goes out: a key whose writes cannot be sent fails the barrier alone.
            int maxBytes = answers.maxCellWritesBytes();
            List<KeyCells> frames = new ArrayList<>();
            for (KeyCells writes : cells.takeWrites()) {
                try {
                    frames.addAll(CellFrames.cut(writes, maxBytes));
                } catch (CellFrames.TooLarge e) {
                    CellDeclarations.Declared cell = cells.declarations().get(e.cell());
                    throw new IllegalStateException("step '" + cell.step() + "': cell '" + cell.name() + "' of key "
                            + SessionCells.describe(writes.getKey().toByteArray()) + " cannot be written back: "
                            + e.getMessage(), e);
                }
            }
            for (KeyCells frame : frames) {
                answers.cellWrites(sequence, frame);
            }
        });
    }

    /** An input the data plane could not make sense of: it fails, and with it the session. */
    synchronized void refuse(long sequence, String why, Answers answers) throws IOException {
        serve(sequence, answers, outputs -> {
            loadPending = false;
            throw new IllegalArgumentException(why);
        });
    }

    private void serve(long sequence, Answers answers, Input input) throws IOException {
        if (failure != null || closed) {
            answers.error(sequence, closed ? "session closed" : "session already failed: " + failure);
            return;
        }
        // An input that fails changes no timer: what it set is forgotten here, at the next input.
        timers.clear();
        try {
            naming.call(() -> {
                input.apply(output -> {
                    try {
                        answers.output(sequence, output);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
                if (timers.changes() > 0) {
                    answers.timers(sequence, timers);
                }
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
