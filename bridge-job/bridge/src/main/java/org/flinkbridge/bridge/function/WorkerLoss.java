package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.InputKind;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;

import java.io.IOException;
import java.util.List;

/**
 * What a lost worker leads to, and what the exchange keeps for it as inputs go out and answers come back:
 * {@link InPlaceRecovery} (a new session, the journal of inputs since the last barrier replayed) or {@link #FAILOVER}
 * (the task fails, and Flink restores the job from its checkpoint). The exchange tells it every input, answer and
 * barrier and asks it only when the worker is lost.
 */
interface WorkerLoss extends AutoCloseable {

    /** A lost worker fails the task; nothing is kept. */
    WorkerLoss FAILOVER = new WorkerLoss() {
        @Override
        public boolean recoversInPlace() {
            return false;
        }

        @Override
        public InPlaceRecovery.Recovery recover(WorkerLostException loss, InPlaceRecovery.Replay replay)
                throws WorkerLostException {
            throw loss;
        }
    };

    /** Whether a lost worker is replaced without failing the task. */
    boolean recoversInPlace();

    /** Record input {@code sequence} went to the worker. */
    default void sentRecord(long sequence, int keyGroup, BridgeRecord record) {}

    /** A timer of {@code key}, in {@code keyGroup}, that fired went to the worker as input {@code sequence}. */
    default void sentTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing) {}

    /** A watermark, a clock, a barrier or the end of input went to the worker, with its value. */
    default void sentMarker(InputKind kind, long sequence, long value) {}

    /** Whether {@code output} is a replayed answer, checked against the first one and dropped. */
    default boolean absorbOutput(long sequence, BridgeRecord output) {
        return false;
    }

    /** Whether {@code changes} are a replayed answer's timer changes, checked against the first ones and dropped. */
    default boolean absorbTimers(long sequence, TimerChanges changes) {
        return false;
    }

    /** Input {@code sequence}'s timer changes arrived (the first time) and were applied. */
    default void timersReceived(long sequence, TimerChanges changes) {}

    /**
     * Whether {@code sequence} is a replayed BARRIER answered before the loss: its cell writes come again, to be
     * applied with the checkpoint the replay completes.
     */
    default boolean replaysAnsweredBarrier(long sequence) {
        return false;
    }

    /** Whether this end of outputs closes a replayed answer, checked and dropped. */
    default boolean absorbEnd(long sequence) {
        return false;
    }

    /** Whether this failure in a dead-letter step answers a replayed input, checked and dropped. */
    default boolean absorbFailure(long sequence, InputFailures.Failure failure) {
        return false;
    }

    /** Record input {@code sequence} failed in a dead-letter step (the first time). */
    default void failed(long sequence, InputFailures.Failure failure) {}

    /** An output of input {@code sequence} arrived (the first time) and went on. */
    default void outputReceived(long sequence, BridgeRecord output) {}

    /** Every output of input {@code sequence} arrived. */
    default void ended(long sequence) {}

    /** A barrier's answers are all in and the worker's state is {@code state}: a new worker starts from here. */
    default void barrier(List<KeyGroupState> state) {}

    /**
     * Replaces the lost worker and replays what it had not finished, or throws: {@code loss} itself when nothing is
     * recovered in place, a {@link SessionExchange.WorkerFailure} when recovery cannot be sure of the result.
     */
    InPlaceRecovery.Recovery recover(WorkerLostException loss, InPlaceRecovery.Replay replay) throws IOException;

    /** Releases what it keeps (the journal's memory). */
    @Override
    default void close() {}
}
