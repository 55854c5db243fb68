package org.flinkbridge.bench;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream.ProcessConfigurableAndNonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.runtime.checkpoint.CheckpointStatsSnapshot;
import org.apache.flink.runtime.messages.webmonitor.ClusterOverview;
import org.apache.flink.runtime.jobmaster.JobResult;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.flinkbridge.bridge.function.BridgeFunction;
import org.flinkbridge.bridge.function.BridgeStreams;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.pipeline.KeyKind;
import org.flinkbridge.pipeline.KeySpec;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.records.RecordKey;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * One embedded Flink MiniCluster for all of the end-to-end runs: each job is submitted to it, waited for,
 * and its checkpoint statistics read back from its archived execution graph, as the web UI shows them.
 */
final class BenchCluster implements AutoCloseable {

    private static final Duration SLOTS_FREE_TIMEOUT = Duration.ofMinutes(2);
    /** Flink keeps the statistics of a job's last 10 checkpoints by default; the state backends' benchmark reads all. */
    private static final int CHECKPOINT_HISTORY = 10_000;

    private final MiniCluster cluster;

    BenchCluster() throws Exception {
        this(1, new Configuration());
    }

    /** A cluster of one TaskManager with {@code slots} slots, configured by {@code configuration}. */
    BenchCluster(int slots, Configuration configuration) throws Exception {
        Configuration withHistory = new Configuration(configuration);
        withHistory.set(WebOptions.CHECKPOINTS_HISTORY_SIZE, CHECKPOINT_HISTORY);
        cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(withHistory)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(slots)
                .build());
        cluster.start();
    }

    /** Runs the job built in {@code env} to its end; fails with the job's own error if it failed. */
    CheckpointStatsSnapshot run(ExecutionEnvironment env) throws Exception {
        JobID id = submit(env);
        end(id).get();
        return checkpoints(id);
    }

    /**
     * Submits the job built in {@code env}, not waiting for it, once every slot is free: a job that has ended may
     * hold its slots a while longer (its sessions closing), and a job that finds none fails at once.
     */
    JobID submit(ExecutionEnvironment env) throws Exception {
        long deadline = System.nanoTime() + SLOTS_FREE_TIMEOUT.toNanos();
        ClusterOverview overview = cluster.requestClusterOverview().get();
        while (overview.getNumSlotsAvailable() < overview.getNumSlotsTotal()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(overview.getNumSlotsAvailable() + " of the cluster's "
                        + overview.getNumSlotsTotal() + " slots still free " + SLOTS_FREE_TIMEOUT.toSeconds()
                        + " s after the previous job ended: a task of it does not end");
            }
            Thread.sleep(100);
            overview = cluster.requestClusterOverview().get();
        }
        return cluster.submitJob(((ExecutionEnvironmentImpl) env).getStreamGraph()).get().getJobID();
    }

    /**
     * Completes when job {@code id} ends, exceptionally with the job's own error if it failed. No thread waits for it:
     * a wait parked on the common pool (one thread on two cores) starves every delayed future of the JVM, the sources'
     * pacing among them, and the job stands still.
     */
    CompletableFuture<Void> end(JobID id) {
        return cluster.requestJobResult(id).thenAccept(result -> {
            try {
                result.toJobExecutionResult(BenchCluster.class.getClassLoader());
            } catch (Exception e) {
                throw new IllegalStateException("job " + id + " failed", e);
            }
        });
    }

    /** The checkpoint statistics of job {@code id}, running or ended, as the web UI shows them. */
    CheckpointStatsSnapshot checkpoints(JobID id) throws Exception {
        return cluster.getArchivedExecutionGraph(id).get().getCheckpointStatsSnapshot();
    }

    /**
     * Runs the job built in {@code env} until {@code done} completes, then cancels it ({@link #cancelWhen}). Fails with
     * the job's own error if it failed, and if it ended before {@code done}.
     */
    CheckpointStatsSnapshot runUntil(ExecutionEnvironment env, CompletableFuture<?> done) throws Exception {
        JobID id = submit(env);
        cancelWhen(id, done);
        return checkpoints(id);
    }

    /**
     * Cancels job {@code id} once {@code done} completes, normally or not, and waits for the job's end: a job
     * cancelled keeps its last checkpoint where its retention says so, one that finished does not. Fails with the
     * job's own error if it failed, if it ended before {@code done}, and with {@code done}'s error if that failed.
     */
    void cancelWhen(JobID id, CompletableFuture<?> done) throws Exception {
        CompletableFuture<JobResult> result = cluster.requestJobResult(id);
        CompletableFuture.anyOf(result, done.exceptionally(error -> null)).get();
        if (result.isDone()) {
            result.get().toJobExecutionResult(BenchCluster.class.getClassLoader());
            throw new IllegalStateException("job " + id + " finished before the benchmark was done with it");
        }
        cluster.cancelJob(id).get();
        result.get();
        done.get();
    }

    /**
     * {@code events} keyed by their JSON field {@code key}, through a keyed session of {@code spec} (parallelism 1),
     * as a pipeline's keyed segment runs. Here, not in {@link BenchWorker}: the JMH benchmarks load that class
     * without Flink's DataStream API on their classpath.
     */
    static NonKeyedPartitionStream<BridgeRecord> keyedSegment(NonKeyedPartitionStream<BridgeRecord> events,
                                                              SessionSpec spec) {
        return keyedSegment(events, spec, 1);
    }

    /** The same at {@code parallelism}: that many sessions, each with the key groups Flink gives its subtask. */
    static ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> keyedSegment(
            NonKeyedPartitionStream<BridgeRecord> events, SessionSpec spec, int parallelism) {
        return BridgeStreams.process(events.keyBy(new RecordKey(new KeySpec(KeyKind.JSON_FIELD, "key"))),
                new BridgeFunction(spec, true, false, false)).withParallelism(parallelism);
    }

    @Override
    public void close() throws Exception {
        cluster.closeAsync().get();
    }
}
