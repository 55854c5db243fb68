package org.flinkbridge.runner;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.JobListener;
import org.flinkbridge.bridge.JobCounters;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A job the local runner runs on another thread: completes with its summary line, and is the run's
 * {@link JobListener}, so its counts can be read as it runs, through its client's accumulators, and once it ended
 * well (the job's result). Each run has its own: no count of an earlier job can pass for this one's.
 */
final class RunningJob extends CompletableFuture<String> implements JobListener {

    private volatile JobClient client;

    /** Starts {@code args}' job on a thread of its own (a wait parked on the common pool starves its delayed futures). */
    static RunningJob start(String... args) {
        RunningJob run = new RunningJob();
        CompletableFuture.runAsync(() -> {
            try {
                run.complete(LocalRunner.run(args, run));
            } catch (Exception e) {
                run.completeExceptionally(new RuntimeException(e));
            }
        }, runs -> Thread.ofPlatform().daemon().name("local runner").start(runs));
        return run;
    }

    @Override
    public void onJobSubmitted(JobClient jobClient, Throwable failure) {
        client = jobClient;
    }

    @Override
    public void onJobExecuted(JobExecutionResult result, Throwable failure) {}

    /** {@code count} so far: 0 before the job is submitted; the job's own once it ended well. */
    long count(JobCounters.Count count) throws Exception {
        return count.of(accumulators());
    }

    /** How often the job's most restarted task was restarted so far. */
    int restarts() throws Exception {
        return JobCounters.restarts(accumulators());
    }

    /** Checks that the job ran without a restart, and so sent each of its {@code records} inputs once. */
    void assertSentOnceWithoutRestart(long records) throws Exception {
        assertEquals(0, restarts(), "the job restarted: records were sent again");
        assertEquals(records, count(JobCounters.Count.SENT), "records sent");
    }

    private Map<String, Object> accumulators() throws Exception {
        JobClient job = client;
        return job == null ? Map.of() : job.getAccumulators().get(30, TimeUnit.SECONDS);
    }
}
