package org.flinkbridge.bridge;

import org.apache.flink.api.common.accumulators.Accumulator;
import org.apache.flink.api.common.accumulators.IntMaximum;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.RuntimeContext;

import java.util.Locale;
import java.util.Map;

/**
 * The job's record counts, kept as Flink accumulators of the tasks that count them (each count is also a Flink
 * metric of its operator). Whoever holds the job's {@code JobClient} reads them as it runs
 * ({@code getAccumulators()}), and from its {@code JobExecutionResult} once it ends: that is how the local runner
 * prints its summary line, and how its tests watch a job mid-run.
 *
 * <p>Flink adds up the accumulators of each task's current attempt: a restarted task counts again from zero, and
 * {@link #restarts} says how often that happened.
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
        DEAD_LETTERS,
        /** Late records that a {@code window} step passed on (header {@code late}) out of its segment. */
        LATE_RECORDS;

        /** The name of this count's accumulator. */
        String accumulator() {
            return PREFIX + name().toLowerCase(Locale.ROOT);
        }

        /**
         * This count's accumulator in the task of {@code context}: the one its operators share, registered by the
         * first that asks (operators chained into one task may count the same).
         */
        public LongCounter in(RuntimeContext context) {
            return context.getLongCounter(accumulator());
        }

        /** This count among a job's {@code accumulators}: 0 where no task counted it. */
        public long of(Map<String, Object> accumulators) {
            return accumulators.get(accumulator()) instanceof Long count ? count : 0;
        }
    }

    private static final String PREFIX = "flink-bridge.";
    /** The highest attempt number of a counting task: how often the most restarted of them was restarted. */
    private static final String RESTARTS = PREFIX + "restarts";

    private JobCounters() {}

    /** Registers how often the task of {@code context} was restarted (its attempt number) for {@link #restarts}. */
    public static void countRestarts(RuntimeContext context) {
        Accumulator<Integer, Integer> restarts = context.getAccumulator(RESTARTS);
        if (restarts == null) {
            restarts = new IntMaximum();
            context.addAccumulator(RESTARTS, restarts);
        }
        restarts.add(context.getTaskInfo().getAttemptNumber());
    }

    /** How often the most restarted counting task of a job was restarted, by the job's {@code accumulators}. */
    public static int restarts(Map<String, Object> accumulators) {
        return accumulators.get(RESTARTS) instanceof Integer restarts ? restarts : 0;
    }
}
