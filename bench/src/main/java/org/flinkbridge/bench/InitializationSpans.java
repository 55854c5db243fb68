package org.flinkbridge.bench;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.runtime.metrics.MetricNames;
import org.apache.flink.traces.Span;
import org.apache.flink.traces.reporter.TraceReporter;
import org.apache.flink.traces.reporter.TraceReporterFactory;

import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A trace reporter that keeps the attributes of each job's {@value #SPAN} span: Flink's JobManager reports it once
 * every subtask of a job has initialized, with the largest ({@code max...}) and the total ({@code sum...}) over the
 * job's subtasks of each figure the subtasks report of their initialization (Flink's
 * {@code SubTaskInitializationMetrics}). The state benchmark reads {@value MetricNames#RESTORED_STATE_SIZE} from it
 * ({@link #restored}). Flink finds this factory through {@code META-INF/services}, a cluster uses it where its
 * configuration names it ({@link #configure}); the MiniCluster runs in this JVM, so its spans are kept here.
 */
public final class InitializationSpans implements TraceReporterFactory {

    static final String SPAN = "JobInitialization";
    private static final String MAX = "max" + MetricNames.RESTORED_STATE_SIZE + ".";
    private static final String SUM = "sum" + MetricNames.RESTORED_STATE_SIZE + ".";
    private static final Map<String, CompletableFuture<Map<String, Object>>> SPANS = new ConcurrentHashMap<>();

    /** Names this reporter in {@code config}, a cluster's configuration. */
    static void configure(Configuration config) {
        config.setString("traces.reporter.initialization.factory.class", InitializationSpans.class.getName());
    }

    /**
     * The attributes of job {@code job}'s {@value #SPAN} span, once reported (once per start of the job; a job
     * restarted reports again, and only the first is kept).
     */
    static CompletableFuture<Map<String, Object>> of(JobID job) {
        CompletableFuture<Map<String, Object>> span = spanOf(job.toString());
        span.whenComplete((attributes, error) -> SPANS.remove(job.toString()));
        return span;
    }

    private static CompletableFuture<Map<String, Object>> spanOf(String job) {
        return SPANS.computeIfAbsent(job, unused -> new CompletableFuture<>());
    }

    /**
     * What the subtasks of a job restored, from its {@value #SPAN} span's attributes: the largest and the total over
     * its subtasks of {@value MetricNames#RESTORED_STATE_SIZE}, each the sum of the sizes of the state handles a
     * subtask restored from, summed over the places Flink tells apart ({@code .LOCAL_DISK}, {@code .LOCAL_MEMORY},
     * {@code .REMOTE}, {@code .UNKNOWN}). The largest is Flink's per place, so their sum may exceed the largest
     * subtask's own total where one subtask's largest part is in one place and another's in another.
     */
    static Restored restored(Map<String, Object> attributes) {
        long max = 0;
        long sum = 0;
        for (Map.Entry<String, Object> attribute : attributes.entrySet()) {
            if (attribute.getKey().startsWith(MAX)) {
                max += ((Number) attribute.getValue()).longValue();
            } else if (attribute.getKey().startsWith(SUM)) {
                sum += ((Number) attribute.getValue()).longValue();
            }
        }
        return new Restored(max, sum);
    }

    /** The bytes of the state handles restored: by the subtask that restored most, and by all together. */
    record Restored(long maxBytes, long sumBytes) {}

    @Override
    public TraceReporter createTraceReporter(Properties properties) {
        return new TraceReporter() {
            @Override
            public void open(MetricConfig config) {}

            @Override
            public void close() {}

            @Override
            public void notifyOfAddedSpan(Span span) {
                if (span.getName().equals(SPAN) && span.getAttributes().get("jobId") instanceof String job) {
                    spanOf(job).complete(Map.copyOf(span.getAttributes()));
                }
            }
        };
    }
}
