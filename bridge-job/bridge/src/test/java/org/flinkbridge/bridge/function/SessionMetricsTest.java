package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.api.common.TaskInfoImpl;
import org.apache.flink.api.common.accumulators.Accumulator;
import org.apache.flink.api.common.functions.util.RuntimeUDFContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.runtime.metrics.groups.UnregisteredMetricGroups;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SessionMetricsTest {

    @Test
    void countsTheLateRecordsOfTheSegmentsWindowStepsByStep() {
        Map<String, Counter> counters = new HashMap<>();
        Map<String, Accumulator<?, ?>> accumulators = new HashMap<>();
        SessionMetrics metrics = new SessionMetrics(new Recording("", counters), new RuntimeUDFContext(
                new TaskInfoImpl("bridge", 1, 0, 1, 0), getClass().getClassLoader(), new ExecutionConfig(),
                Map.of(), accumulators, UnregisteredMetricGroups.createUnregisteredOperatorMetricGroup()),
                4, () -> 0, () -> 0, () -> 0, List.of(), List.of("hourly", "daily"));

        metrics.outputEmitted(late("hourly"));
        metrics.outputEmitted(late("hourly"));
        metrics.outputEmitted(late("daily"));
        // A late record of another segment's window, passed through, and a record on time.
        metrics.outputEmitted(late("upstream"));
        metrics.outputEmitted(BridgeRecord.ofUtf8("{}", 1));

        assertEquals(2, counters.get("step.hourly.bridgeLateRecords").getCount());
        assertEquals(1, counters.get("step.daily.bridgeLateRecords").getCount());
        assertEquals(3L, accumulators.get("flink-bridge.late_records").getLocalValue());
    }

    private static BridgeRecord late(String step) {
        BridgeRecord record = BridgeRecord.ofUtf8("{}", 1);
        record.headers.put("late", step);
        return record;
    }

    /** A metric group that keeps the counters registered in it and its subgroups, by their dotted names. */
    private static final class Recording extends UnregisteredMetricsGroup {
        private final String prefix;
        private final Map<String, Counter> counters;

        Recording(String prefix, Map<String, Counter> counters) {
            this.prefix = prefix;
            this.counters = counters;
        }

        @Override
        public Counter counter(String name) {
            return counter(name, new SimpleCounter());
        }

        @Override
        public <C extends Counter> C counter(String name, C counter) {
            counters.put(prefix + name, counter);
            return counter;
        }

        @Override
        public MetricGroup addGroup(String key, String value) {
            return new Recording(prefix + key + "." + value + ".", counters);
        }
    }
}
