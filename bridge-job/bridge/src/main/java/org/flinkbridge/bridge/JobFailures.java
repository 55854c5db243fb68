package org.flinkbridge.bridge;

import java.util.concurrent.atomic.AtomicReference;

/**
 * The first failure a bridge operator raised in this JVM since the last {@link #reset()}, so the local runner
 * can name it when Flink reports the job's failure by one of its consequences instead: a source coordinator's
 * event that could not reach the failed task fails that task again with "Task is not running", and whichever
 * of the two reaches the JobManager first becomes the job's cause.
 *
 * <p>The one JVM-wide static left between the job and the runner (counts go through Flink's accumulators,
 * {@link JobCounters}): when the coordinator's failure comes first, the JobManager marks the task failed with it and
 * drops the task's own report, exception and final accumulators alike, so nothing Flink hands back (the job's
 * exception, its exception history, its accumulators) holds the bridge's failure. It serves only the local runner,
 * whose MiniCluster runs every task in its JVM, and only where the job's exception holds no failure of the bridge.
 */
public final class JobFailures {

    private static final AtomicReference<RuntimeException> FIRST = new AtomicReference<>();

    private JobFailures() {}

    public static void reset() {
        FIRST.set(null);
    }

    /** Keeps {@code failure} if it is the first since the last reset. */
    public static void record(RuntimeException failure) {
        FIRST.compareAndSet(null, failure);
    }

    /** The first failure recorded since the last reset, or null. */
    public static RuntimeException first() {
        return FIRST.get();
    }
}
