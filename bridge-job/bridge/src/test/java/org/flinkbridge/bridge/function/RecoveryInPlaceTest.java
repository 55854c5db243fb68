package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.apache.flink.runtime.memory.MemoryManager;
import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.bridge.session.WorkerChannel;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Recovery in place, without Flink: workers in memory that die after a given number of answers, a session that
 * replaces one with the next, and the downstream log, which must show every output exactly once and in order.
 */
class RecoveryInPlaceTest {

    private static final KeyGroupState RESTORED = state("restored");
    private final DownstreamLog log = new DownstreamLog();
    private final List<String> downstream = log.lines;
    private final List<InPlaceRecovery.Recovery> recoveries = log.recoveries;
    private SessionExchange exchange;
    /** The bridge's processing time, as the exchange stamps it. */
    private long now = 1_000;

    @AfterEach
    void releaseTheJournal() {
        if (exchange != null) {
            exchange.close();
        }
    }

    @Test
    void aWorkerLostMidStreamIsReplacedAndNothingGoesDownstreamTwice() throws IOException {
        // The first worker answers the clock, r0 and r1 and the first output of r2 (of two), then dies.
        Sessions sessions = new Sessions(new Worker(2, 6), new Worker(2, Integer.MAX_VALUE));
        exchange = exchange(sessions, 1 << 20);
        for (int i = 0; i < 4; i++) {
            exchange.record(KeyGroups.NONE, record("r" + i));
        }
        exchange.watermark(7);
        exchange.endOfInput();

        assertEquals(List.of("r0'0", "r0'1", "r1'0", "r1'1", "r2'0", "r2'1", "r3'0", "r3'1", "watermark 7"), downstream);
        assertEquals(List.of(List.of(RESTORED)), sessions.replacedWith, "the new session gets the restored state");
        assertEquals(1, recoveries.size());
        assertTrue(recoveries.getFirst().cause().contains("worker 0 is gone"), recoveries.toString());
        assertTrue(sessions.workers.get(1).inputs.containsAll(List.of("CLOCK 0 at 1000", "RECORD 1", "RECORD 2", "RECORD 3")),
                "the inputs since the last barrier are replayed: " + sessions.workers.get(1).inputs);
    }

    @Test
    void afterACheckpointOnlyLaterInputsAreReplayedOnItsState() throws IOException {
        // The first worker answers the clock, a, the barrier, the next clock and b, then dies: c is not yet sent.
        Sessions sessions = new Sessions(new Worker(1, 7), new Worker(1, Integer.MAX_VALUE));
        exchange = exchange(sessions, 1 << 20);
        exchange.record(KeyGroups.NONE, record("a"));
        SessionExchange.Checkpoint checkpoint = exchange.checkpoint(1);
        exchange.checkpointFinished();
        exchange.record(KeyGroups.NONE, record("b"));
        exchange.record(KeyGroups.NONE, record("c"));
        exchange.endOfInput();

        assertEquals(List.of(state("snapshot of worker 0")), checkpoint.workerState());
        assertEquals(List.of(checkpoint.workerState()), sessions.replacedWith);
        assertEquals(List.of("a'0", "b'0", "c'0"), downstream);
        assertEquals(List.of("CLOCK 3 at 1000", "RECORD 4", "RECORD 5", "WATERMARK 6"), sessions.workers.get(1).inputs);
        assertEquals(3, recoveries.getFirst().replayedInputs(), "a clock, b and c were sent since the barrier");
    }

    /** Steps that read processing time read the bridge's, journaled: a replay gives them the times of the first run. */
    @Test
    void aReplaySendsTheProcessingTimesOfTheFirstRunNotTheTimeOfTheReplay() throws IOException {
        // The first worker answers the clock, a, the next clock and b, then dies before c's answers.
        Sessions sessions = new Sessions(new Worker(1, 6), new Worker(1, Integer.MAX_VALUE));
        exchange = exchange(sessions, 1 << 20);
        exchange.record(KeyGroups.NONE, record("a"));
        exchange.record(KeyGroups.NONE, record("a2"));
        now = 1_250;
        exchange.record(KeyGroups.NONE, record("b"));
        now = 9_000;
        exchange.endOfInput();

        assertEquals(List.of("CLOCK 0 at 1000", "RECORD 1", "RECORD 2", "CLOCK 3 at 1250", "RECORD 4"),
                sessions.workers.get(0).inputs, "a clock only when the time moved");
        assertEquals(List.of("CLOCK 0 at 1000", "RECORD 1", "RECORD 2", "CLOCK 3 at 1250", "RECORD 4",
                "WATERMARK 5"), sessions.workers.get(1).inputs);
        assertEquals(List.of("a'0", "a2'0", "b'0"), downstream);
    }

    @Test
    void aReplayThatAnswersDifferentlyFailsTheTaskInsteadOfEmittingIt() throws IOException {
        Worker different = new Worker(1, Integer.MAX_VALUE);
        different.suffix = "''";
        Sessions sessions = new Sessions(new Worker(1, 3), different);
        exchange = exchange(sessions, 1 << 20);

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class, () -> {
            exchange.record(KeyGroups.NONE, record("a"));
            exchange.record(KeyGroups.NONE, record("b"));
            exchange.endOfInput();
        });

        assertTrue(failure.getMessage().contains("replayed input #1 gave 1 output(s) that differ from those it gave"
                + " before: the steps are not deterministic"), failure.getMessage());
        assertEquals(List.of("a'0"), downstream);
    }

    /**
     * A worker stopped for an upgrade: the new build answers differently, which is no failure. What the old build
     * answered went downstream once and its replay is dropped unchecked; what it had not answered, the new one does.
     */
    @Test
    void aWorkerStoppedForAnUpgradeHandsOverToANewBuildWhoseAnswersDiffer() throws IOException {
        // The old build answers the clock, a and b, then stops as asked before c is sent.
        Worker old = new Worker(1, 5);
        old.stopsAsAsked = true;
        Worker upgraded = new Worker(1, Integer.MAX_VALUE);
        upgraded.suffix = "-v2-";
        Sessions sessions = new Sessions(old, upgraded);
        exchange = exchange(sessions, 1 << 20);
        exchange.record(KeyGroups.NONE, record("a"));
        exchange.record(KeyGroups.NONE, record("b"));
        exchange.record(KeyGroups.NONE, record("c"));
        exchange.endOfInput();

        assertEquals(List.of("a'0", "b'0", "c-v2-0"), downstream);
        assertEquals(List.of(true), sessions.replacedAfterStop, "the session knows to move to the new build");
        assertEquals(1, recoveries.size());
        assertTrue(recoveries.getFirst().upgrade(), recoveries.toString());
        assertEquals(2, recoveries.getFirst().verifiedOutputs(), "a's and b's outputs replayed and dropped");
    }

    /** After an upgrade the journal holds the new build's answers: a later loss compares the replay with those. */
    @Test
    void aLossAfterAnUpgradeComparesTheReplayWithTheNewBuildsAnswers() throws IOException {
        Worker old = new Worker(1, 5);
        old.stopsAsAsked = true;
        Worker upgraded = new Worker(1, 7);
        upgraded.suffix = "-v2-";
        Worker again = new Worker(1, Integer.MAX_VALUE);
        again.suffix = "-v2-";
        Sessions sessions = new Sessions(old, upgraded, again);
        exchange = exchange(sessions, 1 << 20);
        for (String name : List.of("a", "b", "c", "d")) {
            exchange.record(KeyGroups.NONE, record(name));
        }
        exchange.endOfInput();

        assertEquals(List.of("a'0", "b'0", "c-v2-0", "d-v2-0"), downstream);
        assertEquals(List.of(true, false), sessions.replacedAfterStop);
        assertEquals(2, recoveries.size());
        assertTrue(!recoveries.get(1).upgrade() && recoveries.get(1).verifiedOutputs() > 0, recoveries.toString());
    }

    /** A replayed input that fails again the same way is checked and dropped: its dead letter goes out once. */
    @Test
    void aDeadLetterIsReplayedAsAFailureAndGoesOutOnce() throws IOException {
        // The first worker answers the clock, a, bad (failed) and b, then dies before c's answers.
        Worker first = new Worker(1, 5);
        Worker second = new Worker(1, Integer.MAX_VALUE);
        for (Worker worker : List.of(first, second)) {
            worker.deadLetters.put("bad", "ValueError");
        }
        Sessions sessions = new Sessions(first, second);
        exchange = exchange(sessions, 1 << 20);
        for (String name : List.of("a", "bad", "b", "c")) {
            exchange.record(KeyGroups.NONE, record(name));
        }
        exchange.endOfInput();

        assertEquals(List.of("a'0", "dead letter bad from step parse: ValueError", "b'0", "c'0"), downstream);
        assertEquals(1, recoveries.size());
    }

    @Test
    void aReplayedInputThatNowFailsOtherwiseFailsTheTask() throws IOException {
        Worker first = new Worker(1, 4);
        first.deadLetters.put("bad", "ValueError");
        Worker second = new Worker(1, Integer.MAX_VALUE);
        second.deadLetters.put("bad", "KeyError");

        SessionExchange.WorkerFailure failure = replayFails(first, second);

        assertTrue(failure.getMessage().contains("replayed input #2 failed in another step, or with another error, "
                + "than before"), failure.getMessage());
    }

    @Test
    void aReplayedInputThatFailedBeforeAndNowGivesOutputsFailsTheTask() throws IOException {
        Worker first = new Worker(1, 4);
        first.deadLetters.put("bad", "ValueError");

        SessionExchange.WorkerFailure failure = replayFails(first, new Worker(1, Integer.MAX_VALUE));

        assertTrue(failure.getMessage().contains("replayed input #2 gave an output where it failed in a dead-letter "
                + "step before"), failure.getMessage());
    }

    /** a, bad and b through {@code first}, which dies after answering bad, then {@code second}: the failure. */
    private SessionExchange.WorkerFailure replayFails(Worker first, Worker second) {
        exchange = exchange(new Sessions(first, second), 1 << 20);
        return assertThrows(SessionExchange.WorkerFailure.class, () -> {
            for (String name : List.of("a", "bad", "b")) {
                exchange.record(KeyGroups.NONE, record(name));
            }
            exchange.endOfInput();
        });
    }

    @Test
    void aJournalOverItsBoundFailsTheTaskNamingIt() throws IOException {
        // The first worker answers the clock, then dies with the record (more than the journal holds) unanswered.
        Sessions sessions = new Sessions(new Worker(1, 1), new Worker(1, Integer.MAX_VALUE));
        exchange = exchange(sessions, 64);

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class, () -> {
            exchange.record(KeyGroups.NONE, record("a".repeat(100)));
            exchange.endOfInput();
        });

        assertTrue(failure.getMessage().contains("they exceed the journal's 64 bytes (flink-bridge.worker.journal-size)"),
                failure.getMessage());
        assertEquals(List.of(), sessions.replacedWith);
    }

    @Test
    void aJournalBoundByItsShareOfManagedMemoryFailsTheTaskNamingIt() throws IOException {
        MemoryManager memoryManager = MemoryManager.create(1 << 20, 4096);
        SessionExchange.WorkerFailure failure = overflowed(new ManagedJournalMemory(memoryManager, 64));

        assertTrue(failure.getMessage().contains("they exceed the journal's 64 bytes (the operator's share of the"
                + " TaskManager's managed memory, less than flink-bridge.worker.journal-size)"), failure.getMessage());
        assertEquals(1 << 20, memoryManager.availableMemory());
    }

    @Test
    void aJournalRefusedManagedMemoryFailsTheTaskNamingIt() throws IOException {
        // The share is 1 MiB, but the slot has only 32 KiB left: the journal's first 64 KiB are refused.
        MemoryManager memoryManager = MemoryManager.create(32 * 1024, 4096);
        SessionExchange.WorkerFailure failure = overflowed(new ManagedJournalMemory(memoryManager, 1 << 20));

        assertTrue(failure.getMessage().contains("they exceed what the TaskManager's managed memory had left for the"
                + " journal"), failure.getMessage());
        assertEquals(32 * 1024, memoryManager.availableMemory());
    }

    /** The failure of a worker lost with a record unanswered that its journal, counted in {@code memory}, lost. */
    private SessionExchange.WorkerFailure overflowed(ManagedJournalMemory memory) {
        Sessions sessions = new Sessions(new Worker(1, 1), new Worker(1, Integer.MAX_VALUE));
        exchange = exchange(sessions, new ReplayJournal(1 << 20, 4, memory));
        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class, () -> {
            exchange.record(KeyGroups.NONE, record("a".repeat(100)));
            exchange.endOfInput();
        });
        assertEquals(List.of(), sessions.replacedWith);
        return failure;
    }

    @Test
    void newSessionsLostOneAfterAnotherFailTheTask() throws IOException {
        Sessions sessions = new Sessions(new Worker(1, 0), new Worker(1, 0), new Worker(1, 0), new Worker(1, 0));
        exchange = exchange(sessions, 1 << 20);

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class, () -> {
            exchange.record(KeyGroups.NONE, record("a"));
            exchange.endOfInput();
        });

        assertTrue(failure.getMessage().contains("and " + InPlaceRecovery.ATTEMPTS
                + " new sessions were lost too, the last because: worker 3 is gone"), failure.getMessage());
    }

    private SessionExchange exchange(Sessions sessions, long journalBytes) {
        return exchange(sessions, new ReplayJournal(journalBytes, 4));
    }

    private SessionExchange exchange(Sessions sessions, ReplayJournal journal) {
        return new SessionExchange(sessions, () -> now, 4, 1_000, new InPlaceRecovery(journal, List.of(RESTORED)),
                new DeadLetters("recovery", "0 main"), log, SessionExchange.Pending.NONE, null,
                SessionExchange.Cells.NONE, 0, SessionExchange.Timers.NONE);
    }

    private static BridgeRecord record(String text) {
        return new BridgeRecord(text.getBytes(StandardCharsets.UTF_8), Map.of("h", "v"), 1);
    }

    private static KeyGroupState state(String text) {
        return KeyGroupState.newBuilder().setKeyGroup(1).setState(ByteString.copyFromUtf8(text)).build();
    }

    /** Workers one after another: {@code replace} moves to the next, recording the state it was given. */
    private static final class Sessions extends SessionsInTurn {
        final List<Worker> workers;
        final List<List<KeyGroupState>> replacedWith = new ArrayList<>();
        final List<Boolean> replacedAfterStop = new ArrayList<>();

        Sessions(Worker... workers) {
            super(List.of(workers));
            this.workers = List.of(workers);
            for (int i = 0; i < workers.length; i++) {
                workers[i].id = i;
            }
        }

        @Override
        public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
            workers.get(current()).checkAlive();
            return List.of(state("snapshot of worker " + current()));
        }

        @Override
        public void replace(List<KeyGroupState> state, boolean stopped) {
            replacedWith.add(state);
            replacedAfterStop.add(stopped);
            super.replace(state, stopped);
        }
    }

    /**
     * A worker in memory: each record is answered by {@code outputs} outputs (its payload, the suffix and the
     * output's index) and an end, other inputs by an end; after {@code lifetime} answers (outputs and ends) it
     * is gone, and every call says so.
     */
    private static final class Worker implements WorkerChannel {
        final List<String> inputs = new ArrayList<>();
        private final Queue<Answer> queued = new ArrayDeque<>();
        private final int outputs;
        private int lifetime;
        int id;
        String suffix = "'";
        /** Ends as a worker asked to stop does (an upgrade), rather than lost. */
        boolean stopsAsAsked;
        /** Payloads failed in the dead-letter step, and with which error class. */
        final Map<String, String> deadLetters = new HashMap<>();

        @FunctionalInterface
        interface Answer {
            void give(Answers answers) throws IOException;
        }

        Worker(int outputs, int lifetime) {
            this.outputs = outputs;
            this.lifetime = lifetime;
        }

        void checkAlive() throws WorkerLostException {
            if (lifetime <= 0) {
                throw new WorkerLostException("worker " + id + (stopsAsAsked ? " stopped as asked" : " is gone"));
            }
        }

        @Override
        public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting)
                throws IOException {
            checkAlive();
            inputs.add("RECORD " + sequence);
            String failure = deadLetters.get(new String(record.payload, StandardCharsets.UTF_8));
            if (failure != null) {
                queued.add(answers -> answers.inputFailed(sequence, new InputFailures.Failure("parse", failure, "no")));
                return;
            }
            for (int i = 0; i < outputs; i++) {
                String text = new String(record.payload, StandardCharsets.UTF_8) + suffix + i;
                queued.add(answers -> answers.output(sequence, RecoveryInPlaceTest.record(text)));
            }
            queued.add(answers -> answers.endOfOutputs(sequence));
        }

        @Override
        public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) throws IOException {
            checkAlive();
            inputs.add("WATERMARK " + sequence);
            queued.add(answers -> answers.endOfOutputs(sequence));
        }

        @Override
        public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) throws IOException {
            checkAlive();
            inputs.add("BARRIER " + sequence);
            queued.add(answers -> answers.endOfOutputs(sequence));
        }

        @Override
        public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) throws IOException {
            checkAlive();
            inputs.add("CLOCK " + sequence + " at " + processingTimeMillis);
            queued.add(answers -> answers.endOfOutputs(sequence));
        }

        @Override
        public void flush() throws IOException {
            checkAlive();
        }

        @Override
        public boolean poll(Answers answers, long timeoutNanos) throws IOException {
            checkAlive();
            boolean any = false;
            Answer next;
            while ((next = queued.poll()) != null) {
                checkAlive();
                next.give(answers);
                lifetime--;
                any = true;
            }
            return any;
        }

        @Override
        public boolean workerStopped() {
            return stopsAsAsked && lifetime <= 0;
        }

        @Override
        public void onAnswersWaiting(Runnable wakeUp) {}

        @Override
        public void close() {}
    }
}
