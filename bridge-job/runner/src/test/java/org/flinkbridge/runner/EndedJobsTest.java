package org.flinkbridge.runner;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.flinkbridge.bridge.function.BridgeFunction;
import org.flinkbridge.job.JobArguments;
import org.flinkbridge.job.PipelineJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.management.ObjectName;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Jobs run one after another on one MiniCluster, as a session cluster's TaskManager runs them: once a job has
 * ended, nothing of its sessions stays reachable, however many jobs the JVM ran before.
 */
class EndedJobsTest {

    private static final int JOBS = 3;
    /** The exchange of a session, which only the bridge function's package sees. */
    private static final String SESSION_EXCHANGE = BridgeFunction.class.getPackageName() + ".SessionExchange";
    private static final int EVENTS = 2_000;
    /** Events a second: each job runs for about a second, long enough for a few checkpoints. */
    private static final int RATE = 2_000;

    @Test
    void theSessionsOfEndedJobsAreNotReachable(@TempDir Path dir) throws Exception {
        Configuration config = new Configuration();
        // Any free port: another cluster on this host may hold the default one.
        config.set(RestOptions.BIND_PORT, "0");
        try (MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(config).setNumTaskManagers(1).setNumSlotsPerTaskManager(2).build())) {
            cluster.start();
            for (int job = 0; job < JOBS; job++) {
                runToItsEnd(cluster, dir, job);
            }
            // A class histogram collects the whole heap first: what it counts is reachable. A task's last steps
            // after its job's result may still run, so the count is taken until it is 0 or the wait is over.
            Map<String, Long> reachable = reachableInstances();
            for (int tries = 0; tries < 60 && !reachable.values().stream().allMatch(count -> count == 0); tries++) {
                TimeUnit.SECONDS.sleep(1);
                reachable = reachableInstances();
            }
            assertEquals(Map.of(BridgeFunction.class.getName(), 0L, SESSION_EXCHANGE, 0L), reachable,
                    "instances reachable after " + JOBS + " jobs ended");
        }
    }

    /**
     * A keyed session over shm with a spawned Java worker, counting per key at parallelism 2, checkpointing every
     * 300 ms.
     */
    private static void runToItsEnd(MiniCluster cluster, Path dir, int job) throws Exception {
        Path pipelineFile = TestPipelines.perKeyCounts(dir, EVENTS, RATE, "transport: shm");
        JobArguments arguments = JobArguments.parse(new String[] {pipelineFile.toString(), "--output",
                dir.resolve("out-" + job).toString()}, null);
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        PipelineJob.build(env, arguments.loadPipeline(), arguments);
        JobID id = cluster.submitJob(((ExecutionEnvironmentImpl) env).getStreamGraph()).get().getJobID();
        cluster.requestJobResult(id).get().toJobExecutionResult(EndedJobsTest.class.getClassLoader());
    }

    /** The number of reachable instances of each class counted, from the JVM's class histogram. */
    private static Map<String, Long> reachableInstances() throws Exception {
        String histogram = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                new Object[] {new String[0]}, new String[] {String[].class.getName()});
        Map<String, Long> counts = new TreeMap<>();
        counts.put(BridgeFunction.class.getName(), 0L);
        counts.put(SESSION_EXCHANGE, 0L);
        for (String line : histogram.split("\n")) {
            // "   12:   37   2368  org.flinkbridge.bridge.function.SessionExchange (module)"
            String[] columns = line.trim().split("\\s+");
            if (columns.length >= 4 && counts.containsKey(columns[3])) {
                counts.put(columns[3], Long.parseLong(columns[1]));
            }
        }
        return counts;
    }
}
