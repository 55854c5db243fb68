package org.flinkbridge.bench;

import org.apache.flink.api.connector.dsv2.DataStreamV2SinkUtils;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.flinkbridge.records.BridgeRecord;

/**
 * What the end-to-end benchmark measures, inside the one JVM the embedded MiniCluster runs in: a stamp put on
 * each record before the step, and at the far side the time it took and when the first and last record came.
 */
final class Latencies {

    private static final String SENT_NANOS = "bench-sent-nanos";

    private static long[] nanos = new long[0];
    private static int count;
    private static int skip;
    private static long[] arrivedMillis = new long[0];
    private static long firstNanos;
    private static long lastNanos;

    /** A measured record slower than the latency goal: when it went into the step and came out (wall clock). */
    record Slow(long sentMillis, long arrivedMillis) {}

    /** The latency goal at half load: records slower than it are kept as {@link Slow} for their timing. */
    static final long GOAL_NANOS = 200_000;

    /**
     * The result of one run: how many records, over what time, each measured one's latency, the measured
     * ones slower than the goal, and the wall-clock span of the measured records.
     */
    record Run(int records, long spanNanos, long[] sortedLatencies, List<Slow> slow, long measuredFromMillis,
               long measuredToMillis) {
        double recordsPerSecond() {
            return records <= 1 ? 0 : (records - 1) * 1e9 / spanNanos;
        }

        double percentileMicros(double percentile) {
            return sortedLatencies.length == 0 ? Double.NaN : percentile(sortedLatencies, percentile) / 1000.0;
        }
    }

    /** The nearest-rank {@code percentile} (0 to 100) of {@code sorted}, which holds at least one value. */
    static long percentile(long[] sorted, double percentile) {
        int index = (int) Math.min(sorted.length - 1, Math.ceil(percentile / 100 * sorted.length) - 1);
        return sorted[Math.max(0, index)];
    }

    private Latencies() {}

    /** Measures the records of {@code stream} ({@link Measure}), then discards them. */
    static void measureAndDiscard(NonKeyedPartitionStream<BridgeRecord> stream) {
        stream.process(new Measure()).withParallelism(1)
                .toSink(DataStreamV2SinkUtils.wrapSink(new DiscardingSink<BridgeRecord>())).withParallelism(1);
    }

    /** Expects {@code expected} records; the latencies of the first {@code warmup} are left out. */
    static synchronized void start(long expected, long warmup) {
        nanos = new long[(int) expected];
        arrivedMillis = new long[(int) expected];
        count = 0;
        skip = (int) Math.min(warmup, expected);
    }

    static synchronized Run finish() {
        int from = Math.min(skip, count);
        int to = Math.min(count, nanos.length);
        List<Slow> slow = new ArrayList<>();
        for (int i = from; i < to; i++) {
            if (nanos[i] > GOAL_NANOS) {
                slow.add(new Slow(arrivedMillis[i] - nanos[i] / 1_000_000, arrivedMillis[i]));
            }
        }
        long[] sorted = Arrays.copyOfRange(nanos, from, to);
        Arrays.sort(sorted);
        return new Run(count, lastNanos - firstNanos, sorted, slow, from < to ? arrivedMillis[from] : 0,
                from < to ? arrivedMillis[to - 1] : 0);
    }

    private static synchronized void record(long sentNanos) {
        long now = System.nanoTime();
        if (count == 0) {
            firstNanos = now;
        }
        lastNanos = now;
        if (count < nanos.length) {
            nanos[count] = now - sentNanos;
            arrivedMillis[count] = System.currentTimeMillis();
        }
        count++;
    }

    /** Puts the time on a record as it goes into the step. */
    static final class Stamp implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
        @Override
        public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) {
            record.headers.put(SENT_NANOS, Long.toString(System.nanoTime()));
            output.collect(record);
        }
    }

    /** Takes the time a record spent in the step as it comes out. */
    static final class Measure implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
        @Override
        public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) {
            String sent = record.headers.get(SENT_NANOS);
            if (sent == null) {
                throw new IllegalStateException("a record lost its " + SENT_NANOS + " header in the step");
            }
            record(Long.parseLong(sent));
            output.collect(record);
        }
    }
}
