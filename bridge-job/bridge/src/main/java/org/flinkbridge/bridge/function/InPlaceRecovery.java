package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.InputKind;
import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Recovery in place: a lost worker (gone, unreachable, or silent past the timeout) is replaced by a session restored
 * to the worker state of the last barrier, the inputs sent since are replayed from the {@link ReplayJournal}, and the
 * answers already received are checked and dropped, so nothing goes downstream twice. When it cannot be sure of the
 * result (the journal overflowed, a replayed answer differs, new sessions are lost too) the task fails and Flink
 * restores the job from its checkpoint.
 */
final class InPlaceRecovery implements WorkerLoss {

    private static final Logger LOG = LoggerFactory.getLogger(InPlaceRecovery.class);
    /** New sessions tried, one after another, for one loss before the task fails. */
    static final int ATTEMPTS = 3;

    /**
     * One recovery in place: why, how long it took, the inputs replayed and the outputs already emitted that the
     * replay gave again and were dropped: checked to be the same, or, after a worker stopped as asked for an
     * upgrade ({@code upgrade}), not compared.
     */
    record Recovery(String cause, long millis, int replayedInputs, long verifiedOutputs, boolean upgrade) {}

    /** What a recovery needs of the exchange whose worker was lost. */
    interface Replay {
        String sessionName();

        /** Whether the worker stopped as asked (an upgrade) rather than being lost. */
        boolean workerStopped();

        /** Leaves the lost session for a new one holding {@code state}; see {@link SessionExchange.Session#replace}. */
        void reopen(List<KeyGroupState> state, boolean stopped) throws IOException;

        /** Sends the replayed inputs to the new session. */
        ReplayJournal.Replayer inputs();

        void flush() throws IOException;

        /** Takes at least one answer, waiting up to the timeout for the one to input {@code sequence}. */
        void awaitSome(long sequence) throws IOException;
    }

    private final ReplayJournal journal;
    /** The worker state the journal's inputs start from: the last barrier's, or the restored checkpoint's. */
    private List<KeyGroupState> barrierState;
    private long verifiedOutputs;

    /** @param restoredState the worker state a restored checkpoint gave the session */
    InPlaceRecovery(ReplayJournal journal, List<KeyGroupState> restoredState) {
        this.journal = journal;
        this.barrierState = List.copyOf(restoredState);
    }

    @Override
    public boolean recoversInPlace() {
        return true;
    }

    @Override
    public void sentRecord(long sequence, int keyGroup, BridgeRecord record) {
        journal.appendRecord(sequence, keyGroup, record);
    }

    @Override
    public void sentMarker(InputKind kind, long sequence, long value) {
        journal.appendMarker(kind, sequence, value);
    }

    @Override
    public void sentTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing) {
        journal.appendTimer(sequence, keyGroup, key, firing);
    }

    @Override
    public boolean replaysAnsweredBarrier(long sequence) {
        return journal.verifyingBarrier(sequence);
    }

    @Override
    public boolean absorbTimers(long sequence, TimerChanges changes) {
        return journal.absorbTimers(sequence, changes);
    }

    @Override
    public void timersReceived(long sequence, TimerChanges changes) {
        journal.answerReceived(sequence, ReplayJournal.OutputHash.of(changes));
    }

    @Override
    public boolean absorbOutput(long sequence, BridgeRecord output) {
        if (journal.absorbOutput(sequence, output)) {
            verifiedOutputs++;
            return true;
        }
        return false;
    }

    @Override
    public boolean absorbEnd(long sequence) {
        return journal.absorbEnd(sequence);
    }

    @Override
    public boolean absorbFailure(long sequence, InputFailures.Failure failure) {
        return journal.absorbFailure(sequence, hash(failure));
    }

    @Override
    public void failed(long sequence, InputFailures.Failure failure) {
        journal.failed(sequence, hash(failure));
    }

    /** What a replay's failure must repeat: the step and the error's class (its message may vary). */
    private static long hash(InputFailures.Failure failure) {
        return ReplayJournal.OutputHash.failure(failure.step(), failure.errorClass());
    }

    @Override
    public void outputReceived(long sequence, BridgeRecord output) {
        journal.outputReceived(sequence, output);
    }

    @Override
    public void ended(long sequence) {
        journal.ended(sequence);
    }

    /** The journal starts again from here. */
    @Override
    public void barrier(List<KeyGroupState> state) {
        barrierState = state;
        journal.truncate();
    }

    @Override
    public Recovery recover(WorkerLostException loss, Replay replay) throws IOException {
        if (journal.overflowed()) {
            throw new SessionExchange.WorkerFailure(loss.getMessage() + "; recovery in place cannot replay the inputs"
                    + " since the last checkpoint: they exceed " + journalBound()
                    + ", so the job restores from its checkpoint", loss);
        }
        // Whatever noticed it first (the data plane, or a control call finding the session gone), the channel knows.
        boolean upgrade = replay.workerStopped();
        if (upgrade) {
            LOG.info("{}: the worker stopped as asked, moving the session to a new worker: {}",
                    replay.sessionName(), loss.getMessage());
        } else {
            LOG.warn("{}: the worker is lost, recovering in place: {}", replay.sessionName(), loss.getMessage());
        }
        long started = System.nanoTime();
        WorkerLostException last = loss;
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            try {
                replay.reopen(barrierState, upgrade && attempt == 1);
                verifiedOutputs = 0;
                journal.replay(replay.inputs(), !upgrade);
                replay.flush();
                while (journal.verifying()) {
                    replay.awaitSome(journal.verifyingSequence());
                }
                Recovery recovery = new Recovery(loss.getMessage(),
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started), journal.entries(), verifiedOutputs,
                        upgrade);
                if (upgrade) {
                    LOG.info("{}: moved to a new worker in {} ms: replayed {} input(s) sent since the last barrier and"
                                    + " dropped, unchecked (a new build may answer differently), {} output(s) already"
                                    + " emitted; because: {}", replay.sessionName(), recovery.millis(),
                            recovery.replayedInputs(), recovery.verifiedOutputs(), recovery.cause());
                } else {
                    LOG.info("{}: recovered in place in {} ms: replayed {} input(s) sent since the last barrier and"
                                    + " checked {} output(s) already emitted; lost because: {}", replay.sessionName(),
                            recovery.millis(), recovery.replayedInputs(), recovery.verifiedOutputs(), recovery.cause());
                }
                return recovery;
            } catch (ReplayJournal.ReplayMismatch mismatch) {
                throw new SessionExchange.WorkerFailure(replay.sessionName() + ": the worker was lost ("
                        + loss.getMessage() + ") and in the recovery in place " + mismatch.getMessage()
                        + "; the job restores from its checkpoint", mismatch);
            } catch (WorkerLostException again) {
                LOG.warn("{}: recovery in place, attempt {} of {}, lost the new worker too: {}",
                        replay.sessionName(), attempt, ATTEMPTS, again.getMessage());
                last = again;
            }
        }
        throw new SessionExchange.WorkerFailure(replay.sessionName() + ": the worker was lost (" + loss.getMessage()
                + ") and " + ATTEMPTS + " new sessions were lost too, the last because: " + last.getMessage(), last);
    }

    /** What bounded the journal that overflowed. */
    private String journalBound() {
        if (journal.refused()) {
            return "what the TaskManager's managed memory had left for the journal (the slot's managed memory was"
                    + " used up before the journal's " + journal.capacityBytes() + " bytes)";
        }
        String bound = journal.boundByMemory()
                ? ManagedJournalMemory.NAME + ", less than flink-bridge.worker.journal-size"
                : "flink-bridge.worker.journal-size";
        return "the journal's " + journal.capacityBytes() + " bytes (" + bound + ")";
    }

    @Override
    public void close() {
        journal.close();
    }
}
