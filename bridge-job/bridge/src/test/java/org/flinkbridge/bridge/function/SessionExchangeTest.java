package org.flinkbridge.bridge.function;

import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bridge's exchange with a session, without Flink: a worker in memory answers as the protocol says (or, where
 * a test says so, breaks it), and the downstream log shows what the Flink function would emit, in order.
 */
class SessionExchangeTest {

    private static final DeadLetters DEAD_LETTERS = new DeadLetters("exchange", "0 main");
    private final Worker worker = new Worker();
    private final DownstreamLog log = new DownstreamLog();
    private final List<String> downstream = log.lines;

    private SessionExchange exchange(int maxInFlight, List<BridgeRecord> restored) {
        return exchange(worker, maxInFlight, restored);
    }

    private SessionExchange exchange(Worker worker, int maxInFlight, List<BridgeRecord> restored) {
        return new SessionExchange(new FixedSession(worker), () -> 1_000, maxInFlight, 50, WorkerLoss.FAILOVER,
                DEAD_LETTERS, log, new SessionExchange.Pending(restored, List.of()), null, SessionExchange.Cells.NONE, 0,
                SessionExchange.Timers.NONE);
    }

    /** An exchange that sent {@code input} to a worker holding its answers back until told. */
    private SessionExchange awaitingAnswers(String input) throws IOException {
        worker.answering = false;
        SessionExchange exchange = exchange(8, List.of());
        exchange.record(KeyGroups.NONE, record(input));
        return exchange;
    }

    @Test
    void outputsGoDownstreamInInputOrderAsTheyArrive() throws IOException {
        SessionExchange exchange = exchange(8, List.of());
        for (int i = 0; i < 5; i++) {
            exchange.record(KeyGroups.NONE, record("r" + i));
        }
        exchange.takeArrived();

        assertEquals(List.of("r0'", "r1'", "r2'", "r3'", "r4'"), downstream);
        assertEquals(0, exchange.inFlight());
    }

    /** A watermark goes downstream at its own end marker, so after every earlier input's outputs. */
    @Test
    void aWatermarkFollowsTheOutputsOfEarlierInputs() throws IOException {
        SessionExchange exchange = awaitingAnswers("a");
        exchange.watermark(10);
        exchange.record(KeyGroups.NONE, record("b"));
        assertEquals(List.of(), downstream, "nothing goes downstream before the worker answers");

        worker.answerAll();
        exchange.takeArrived();

        assertEquals(List.of("a'", "watermark 10", "b'"), downstream);
    }

    @Test
    void answersOutOfOrderAreAProtocolViolation() throws IOException {
        SessionExchange exchange = awaitingAnswers("a");
        exchange.record(KeyGroups.NONE, record("b"));
        worker.answer(answers -> answers.endOfOutputs(1));

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class,
                exchange::takeArrived);

        assertEquals("session s: the worker sent an end of outputs for input #1 but the oldest unanswered input is"
                + " #0 (a protocol violation)", failure.getMessage());
    }

    /** After the barrier, answers belong to the next checkpoint: held, stored, and released when it completes. */
    @Test
    void aCheckpointHoldsTheAnswersToEarlierInputsUntilItCompletes() throws IOException {
        SessionExchange exchange = awaitingAnswers("a");
        exchange.watermark(5);
        worker.answering = true;

        List<BridgeRecord> stored = exchange.checkpoint(1).pending().outputs();

        assertEquals(List.of("a'"), stored.stream().map(SessionExchangeTest::text).toList());
        assertEquals(List.of(), downstream, "nothing goes downstream while the checkpoint is taken");
        assertEquals(List.of("CLOCK 0", "RECORD 1", "WATERMARK 2", "BARRIER 3"), worker.inputs);
        exchange.checkpointFinished();
        assertEquals(List.of("a'", "watermark 5"), downstream);
    }

    /** An aborted checkpoint that is never notified: the next input releases what it held, first. */
    @Test
    void theNextInputReleasesWhatAnAbortedCheckpointHeld() throws IOException {
        SessionExchange exchange = awaitingAnswers("a");
        worker.answering = true;
        exchange.checkpoint(1);

        exchange.record(KeyGroups.NONE, record("b"));

        assertEquals(List.of("a'", "b'"), downstream);
    }

    @Test
    void outputsARestoredCheckpointHeldGoFirstAndAreStoredAgainUntilEmitted() throws IOException {
        SessionExchange exchange = exchange(8, List.of(record("held1"), record("held2")));

        List<BridgeRecord> stored = exchange.checkpoint(3).pending().outputs();
        assertEquals(List.of("held1", "held2"), stored.stream().map(SessionExchangeTest::text).toList());
        exchange.checkpointFinished();
        assertEquals(List.of(), downstream, "a restored checkpoint's outputs wait for somewhere to go");

        exchange.record(KeyGroups.NONE, record("new"));
        assertEquals(List.of("held1", "held2", "new'"), downstream);
    }

    /** A job restored at parallelism 1 from two subtasks: both subtasks' held outputs come back, in order. */
    @Test
    void aRestoreAtAnotherParallelismEmitsEveryOldSubtasksHeldOutputs() throws IOException {
        List<byte[]> checkpoint = List.of(CheckpointEntries.output(0, record("s0-a")),
                CheckpointEntries.output(1, record("s1-a")), CheckpointEntries.output(0, record("s0-b")));
        CheckpointEntries.Restored restored = CheckpointEntries.select(checkpoint, 0, 1, 128);
        SessionExchange exchange = exchange(8, restored.outputs());

        exchange.endOfInput();

        assertEquals(List.of("s0-a", "s0-b", "s1-a"), downstream.stream().sorted().toList());
        assertEquals(3, downstream.size());
    }

    /** A full window waits for the oldest answer before it sends more: that is backpressure. */
    @Test
    void aFullWindowWaitsForAnAnswerBeforeSendingMore() throws IOException {
        worker.answering = false;
        worker.answerWhenWaitedFor = true;
        SessionExchange exchange = exchange(2, List.of());
        exchange.record(KeyGroups.NONE, record("a"));
        assertEquals(2, exchange.inFlight(), "the first input's clock, and a");

        exchange.record(KeyGroups.NONE, record("b"));

        assertEquals(List.of("CLOCK 0", "RECORD 1", "RECORD 2"), worker.inputs);
        assertTrue(downstream.contains("a'"), downstream.toString());
    }

    @Test
    void aSilentWorkerOrAFailedInputFailsTheTaskNamingTheSession() throws IOException {
        SessionExchange silent = awaitingAnswers("a");
        assertEquals("session s: no answer to input #0 within 50 ms (the worker hangs or is unreachable)",
                assertThrows(SessionExchange.WorkerFailure.class, silent::endOfInput).getMessage());

        Worker failing = new Worker();
        failing.failing = true;
        SessionExchange failed = exchange(failing, 8, List.of());
        assertEquals("session s: the worker failed input #1: boom",
                assertThrows(SessionExchange.WorkerFailure.class,
                        () -> failed.record(KeyGroups.NONE, record("x"))).getMessage());
    }

    /** A session that is never replaced: these tests run without recovery in place. */
    private static BridgeRecord record(String text) {
        return new BridgeRecord(text.getBytes(StandardCharsets.UTF_8), Map.of(), 0);
    }

    @Test
    void aRecordADeadLetterStepFailedOnGoesToTheDeadLettersInOrderAndTheOthersGoOn() throws IOException {
        SessionExchange exchange = exchange(8, List.of());
        worker.deadLetters.add("bad");

        exchange.record(KeyGroups.NONE, record("a"));
        exchange.record(KeyGroups.NONE, record("bad"));
        exchange.record(KeyGroups.NONE, record("b"));
        exchange.endOfInput();

        assertEquals(List.of("a'", "dead letter bad from step parse: java.lang.IllegalArgumentException", "b'"),
                downstream);
    }

    @Test
    void aDeadLetterCarriesTheRecordAndHeadersNamingWhereAndHowItFailed() throws IOException {
        SessionExchange exchange = exchange(8, List.of());
        worker.deadLetters.add("bad");

        exchange.record(KeyGroups.NONE, new BridgeRecord("bad".getBytes(StandardCharsets.UTF_8), Map.of("k", "v"), 7));
        exchange.endOfInput();

        BridgeRecord letter = log.deadLetters.getFirst();
        assertEquals("bad", text(letter));
        assertEquals(7, letter.timestamp);
        assertEquals(Map.of("k", "v", DeadLetters.PIPELINE, "exchange", DeadLetters.SEGMENT, "0 main",
                DeadLetters.STEP, "parse", DeadLetters.ERROR_CLASS, "java.lang.IllegalArgumentException",
                DeadLetters.ERROR_MESSAGE, "not JSON: bad", DeadLetters.TIME, "1000"), letter.headers);
    }

    @Test
    void aDeadLetterAfterABarrierIsHeldStoredInTheCheckpointAndEmittedWhenItCompletes() throws IOException {
        SessionExchange exchange = exchange(8, List.of());
        worker.deadLetters.add("bad");
        worker.answering = false;
        worker.answerWhenWaitedFor = true;
        exchange.record(KeyGroups.NONE, record("bad"));

        SessionExchange.Pending stored = exchange.checkpoint(1).pending();

        assertEquals(List.of("bad"), stored.deadLetters().stream().map(SessionExchangeTest::text).toList());
        assertEquals(List.of(), downstream);
        exchange.checkpointFinished();
        assertEquals(List.of("dead letter bad from step parse: java.lang.IllegalArgumentException"), downstream);
    }

    @Test
    void aFailedInputFromASegmentWithoutDeadLetterStepsFailsTheTask() {
        SessionExchange exchange = new SessionExchange(new FixedSession(worker), () -> 1_000, 8, 50,
                WorkerLoss.FAILOVER, null, log, SessionExchange.Pending.NONE, null, SessionExchange.Cells.NONE, 0,
                SessionExchange.Timers.NONE);
        worker.deadLetters.add("bad");

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class,
                () -> exchange.record(KeyGroups.NONE, record("bad")));

        assertTrue(failure.getMessage().contains("no step of the segment has on_error: dead_letter"),
                failure.getMessage());
    }

    private static String text(BridgeRecord record) {
        return new String(record.payload, StandardCharsets.UTF_8);
    }

    /**
     * A worker in memory: each record is answered by one output (its payload with a prime) and an end marker, a
     * watermark or barrier by an end marker; answers are queued at once ({@code answering}), or when the test
     * says, or (with {@code answerWhenWaitedFor}) when the bridge waits for them.
     */
    private static final class Worker extends AnsweringWorker {
        private final Queue<Answer> unanswered = new ArrayDeque<>();
        boolean answering = true;
        boolean answerWhenWaitedFor;
        boolean failing;
        /** Payloads the worker answers as failed in the dead-letter step "parse". */
        final Set<String> deadLetters = new HashSet<>();

        @Override
        public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting) {
            inputs.add("RECORD " + sequence);
            if (deadLetters.contains(text(record))) {
                reply(answers -> answers.inputFailed(sequence, new InputFailures.Failure("parse",
                        "java.lang.IllegalArgumentException", "not JSON: " + text(record))));
                return;
            }
            reply(failing ? answers -> answers.error(sequence, "boom") : answers -> {
                answers.output(sequence, SessionExchangeTest.record(text(record) + "'"));
                answers.endOfOutputs(sequence);
            });
        }

        @Override
        public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) {
            inputs.add("WATERMARK " + sequence);
            reply(answers -> answers.endOfOutputs(sequence));
        }

        @Override
        public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) {
            inputs.add("BARRIER " + sequence);
            reply(answers -> answers.endOfOutputs(sequence));
        }

        @Override
        public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) {
            inputs.add("CLOCK " + sequence);
            reply(answers -> answers.endOfOutputs(sequence));
        }

        /**
         * Holds an answer back until the worker answers ({@code answering}, {@link #answerAll}); answers stay in input
         * order: answering one answers every earlier one first.
         */
        private void reply(Answer answer) {
            unanswered.add(answer);
            if (answering) {
                answerAll();
            }
        }

        void answerAll() {
            unanswered.forEach(this::answer);
            unanswered.clear();
        }

        @Override
        public boolean poll(Answers answers, long timeoutNanos) throws IOException {
            if (!answersQueued() && timeoutNanos > 0 && (answering || answerWhenWaitedFor)) {
                answerAll();
            }
            return super.poll(answers, timeoutNanos);
        }
    }
}
