package org.flinkbridge.bench;

import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.flinkbridge.records.BridgeRecord;

/**
 * What reaches the end of a job (the MiniCluster runs in this JVM, so the counts are static, as
 * {@link Latencies}' are): the records, the sum of a numeric header where they carry it, the largest value of
 * it, and the time from the first record to the last arrival. With {@code keep} false, a record that carries the
 * header is counted and not passed on (the timer step's count of firings), and neither counts as a record. With
 * {@code header} null, the records only.
 */
final class Tally implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
    private static long records;
    private static long headerSum;
    private static long largest;
    private static long firstNanos;
    private static long lastNanos;

    record Counts(long records, long headerSum, long largest, long spanNanos) {}

    private final String header;
    private final boolean keep;

    Tally(String header, boolean keep) {
        this.header = header;
        this.keep = keep;
    }

    static synchronized void reset() {
        records = 0;
        headerSum = 0;
        largest = 0;
    }

    static synchronized Counts counts() {
        return new Counts(records, headerSum, largest, lastNanos - firstNanos);
    }

    @Override
    public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                              PartitionedContext<BridgeRecord> ctx) {
        String value = header == null ? null : record.headers.get(header);
        if (arrived(value == null ? -1 : Long.parseLong(value), keep || value == null)) {
            output.collect(record);
        }
    }

    /** Counts an arrival, its header's {@code value} (-1: none); returns {@code isRecord}. */
    private static synchronized boolean arrived(long value, boolean isRecord) {
        long now = System.nanoTime();
        if (isRecord && records++ == 0) {
            firstNanos = now;
        }
        lastNanos = now;
        if (value >= 0) {
            headerSum += value;
            largest = Math.max(largest, value);
        }
        return isRecord;
    }
}
