package org.flinkbridge.kafka;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A transactional id of an exactly-once Kafka sink, {@code <prefix>-<subtask>-<checkpoint>}: the writer of
 * {@code subtask} begins its transaction after taking checkpoint {@code checkpoint - 1}, so the transaction is
 * committed when checkpoint {@code checkpoint} completes (or the next one the writer takes, if it missed that).
 * One writer uses an id at a time, and a restored job tells from the id alone whether a checkpoint holds it.
 */
record TransactionalId(String prefix, int subtask, long checkpointId) {

    /** The id if {@code transactionalId} is one of {@code prefix}'s, else empty. */
    static Optional<TransactionalId> parse(String prefix, String transactionalId) {
        Matcher matcher = Pattern.compile(Pattern.quote(prefix) + "-(\\d{1,9})-(\\d{1,18})").matcher(transactionalId);
        return matcher.matches()
                ? Optional.of(new TransactionalId(prefix, Integer.parseInt(matcher.group(1)),
                        Long.parseLong(matcher.group(2))))
                : Optional.empty();
    }

    /**
     * Whether writer {@code writerSubtask} of {@code parallelism}, starting after a restore of
     * {@code restoredCheckpointId} (0 for none), aborts this id's open transaction. Transactions up to that
     * checkpoint are in its committables, which the committer commits; later ones belong to no checkpoint. The
     * ids of subtasks a smaller parallelism no longer has are shared out by subtask modulo parallelism, so that
     * each is aborted by exactly one writer, and never one a running writer is using.
     */
    boolean abortedOnStartBy(int writerSubtask, int parallelism, long restoredCheckpointId) {
        return subtask % parallelism == writerSubtask && checkpointId > restoredCheckpointId;
    }

    @Override
    public String toString() {
        return prefix + "-" + subtask + "-" + checkpointId;
    }
}
