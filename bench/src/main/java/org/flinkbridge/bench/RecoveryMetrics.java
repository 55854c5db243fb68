package org.flinkbridge.bench;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Metric;
import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A metric reporter that keeps the bridge's own measure of recovery in place, per job and subtask: the counters
 * {@value #RECOVERIES} and {@value #REPLAYED} and the gauge {@value #LAST_RECOVERY} (the bridge's
 * {@code SessionMetrics}: from the loss being noticed to the new session having replayed the journal and checked the
 * answers). The state benchmark reads them
 * after it killed the workers ({@link #of}). Flink finds this factory through {@code META-INF/services}, a cluster
 * uses it where its configuration names it ({@link #configure}); the MiniCluster runs in this JVM, so the metrics
 * registered there are read here, live.
 */
public final class RecoveryMetrics implements MetricReporterFactory {

    static final String RECOVERIES = "bridgeWorkerRecoveries";
    static final String LAST_RECOVERY = "bridgeLastRecoveryMillis";
    static final String REPLAYED = "bridgeReplayedInputs";
    private static final String JOB = "<job_id>";
    private static final String SUBTASK = "<subtask_index>";
    /** The metrics kept, by job, subtask and name. */
    private static final Map<List<String>, Metric> METRICS = new ConcurrentHashMap<>();

    /** Names this reporter in {@code config}, a cluster's configuration. */
    static void configure(Configuration config) {
        config.setString("metrics.reporter.recovery.factory.class", RecoveryMetrics.class.getName());
    }

    /**
     * One subtask's recoveries in place so far, how long the last one took (0 before any), and the inputs the
     * recoveries replayed.
     */
    record Subtask(long recoveries, long lastRecoveryMillis, long replayedInputs) {}

    /** The bridge's recovery metrics of job {@code job}'s subtasks that registered them, by subtask index. */
    static Map<Integer, Subtask> of(JobID job) {
        Map<Integer, long[]> figures = new TreeMap<>();
        METRICS.forEach((id, metric) -> {
            if (!id.get(0).equals(job.toString())) {
                return;
            }
            long[] subtask = figures.computeIfAbsent(Integer.parseInt(id.get(1)), index -> new long[3]);
            switch (id.get(2)) {
                case RECOVERIES -> subtask[0] = ((Counter) metric).getCount();
                case LAST_RECOVERY -> subtask[1] = ((Number) ((Gauge<?>) metric).getValue()).longValue();
                default -> subtask[2] = ((Counter) metric).getCount();
            }
        });
        Map<Integer, Subtask> subtasks = new TreeMap<>();
        figures.forEach((index, subtask) -> subtasks.put(index, new Subtask(subtask[0], subtask[1], subtask[2])));
        return subtasks;
    }

    private static List<String> id(String name, MetricGroup group) {
        Map<String, String> variables = group.getAllVariables();
        String job = variables.get(JOB);
        String subtask = variables.get(SUBTASK);
        return job == null || subtask == null || !List.of(RECOVERIES, LAST_RECOVERY, REPLAYED).contains(name) ? null
                : List.of(job, subtask, name);
    }

    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        return new MetricReporter() {
            @Override
            public void open(MetricConfig config) {}

            @Override
            public void close() {}

            @Override
            public void notifyOfAddedMetric(Metric metric, String name, MetricGroup group) {
                List<String> id = id(name, group);
                if (id != null) {
                    METRICS.put(id, metric);
                }
            }

            @Override
            public void notifyOfRemovedMetric(Metric metric, String name, MetricGroup group) {
                List<String> id = id(name, group);
                if (id != null) {
                    METRICS.remove(id, metric);
                }
            }
        };
    }
}
