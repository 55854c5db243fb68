package org.flinkbridge.bench;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.runtime.checkpoint.CheckpointStatsSnapshot;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;

/**
 * One embedded Flink MiniCluster for all of the end-to-end runs: each job is submitted to it, waited for,
 * and its checkpoint statistics read back from its archived execution graph, as the web UI shows them.
 */
final class BenchCluster implements AutoCloseable {

    private final MiniCluster cluster;

    BenchCluster() throws Exception {
        cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(new Configuration())
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(1)
                .build());
        cluster.start();
    }

    /** Runs the job built in {@code env} to its end; fails with the job's own error if it failed. */
    CheckpointStatsSnapshot run(ExecutionEnvironment env) throws Exception {
        JobID id = cluster.submitJob(((ExecutionEnvironmentImpl) env).getStreamGraph()).get().getJobID();
        cluster.requestJobResult(id).get().toJobExecutionResult(BenchCluster.class.getClassLoader());
        return cluster.getArchivedExecutionGraph(id).get().getCheckpointStatsSnapshot();
    }

    @Override
    public void close() throws Exception {
        cluster.closeAsync().get();
    }
}
