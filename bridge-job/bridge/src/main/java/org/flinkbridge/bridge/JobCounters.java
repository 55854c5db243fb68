package org.flinkbridge.bridge;

import java.util.concurrent.atomic.LongAdder;

/**
 * Record counts of the jobs run in this JVM, which is how the local runner prints its summary line: its
 * MiniCluster runs every task in this JVM. Each count is also a Flink metric of its operator.
 */
public final class JobCounters {

    public enum Count {
        /** Records produced by the sources. */
        READ,
        /** Inputs handed to the first segment's worker sessions. */
        SENT,
        /** Outputs the last segment's worker sessions gave back. */
        RECEIVED,
        /** Records that reached the sinks. */
        WRITTEN,
        /** Inputs those written records stand for: a batch counts its batch_size. */
        WRITTEN_INPUTS,
        /** Lost workers recovered in place, by any session. */
        WORKER_RECOVERIES,
        /** Sessions moved to a new worker after theirs stopped as asked (an upgrade). */
        WORKER_UPGRADES,
        /** Records a dead-letter step failed on, sent to the pipeline's dead letters. */
        DEAD_LETTERS
    }

    private static final LongAdder[] COUNTS = new LongAdder[Count.values().length];

    static {
        reset();
    }

    private JobCounters() {}

    public static void reset() {
        for (Count count : Count.values()) {
            COUNTS[count.ordinal()] = new LongAdder();
        }
    }

    public static void add(Count count, long n) {
        COUNTS[count.ordinal()].add(n);
    }

    public static long get(Count count) {
        return COUNTS[count.ordinal()].sum();
    }
}
