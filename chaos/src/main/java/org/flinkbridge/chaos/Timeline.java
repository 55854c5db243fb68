package org.flinkbridge.chaos;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * When the committed output was read and how late each record was (read time minus its input's Kafka timestamp,
 * which the job carries through), in buckets of fixed length from the start of a run; thread-safe.
 */
final class Timeline {

    /** One bucket: its start (seconds from the run's start), outputs read in it and their latency percentiles. */
    record Bucket(long startSecond, long outputs, double recordsPerSecond, long latencyP50Millis,
                  long latencyP99Millis) {}

    private final long startMillis;
    private final long bucketMillis;
    private final List<long[]> latencies = new ArrayList<>();
    private final List<Integer> sizes = new ArrayList<>();
    private long firstReadMillis = Long.MAX_VALUE;
    private long lastReadMillis = Long.MIN_VALUE;

    Timeline(long startMillis, long bucketMillis) {
        this.startMillis = startMillis;
        this.bucketMillis = bucketMillis;
    }

    long startMillis() {
        return startMillis;
    }

    synchronized void add(long readMillis, long latencyMillis) {
        firstReadMillis = Math.min(firstReadMillis, readMillis);
        lastReadMillis = Math.max(lastReadMillis, readMillis);
        int bucket = (int) Math.max(0, (readMillis - startMillis) / bucketMillis);
        while (latencies.size() <= bucket) {
            latencies.add(new long[64]);
            sizes.add(0);
        }
        long[] values = latencies.get(bucket);
        int size = sizes.get(bucket);
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
            latencies.set(bucket, values);
        }
        values[size] = latencyMillis;
        sizes.set(bucket, size + 1);
    }

    /** When the first record was read (ms since the epoch); Long.MAX_VALUE before any. */
    synchronized long firstReadMillis() {
        return firstReadMillis;
    }

    /** When the last record was read (ms since the epoch); Long.MIN_VALUE before any. */
    synchronized long lastReadMillis() {
        return lastReadMillis;
    }

    synchronized List<Bucket> buckets() {
        List<Bucket> buckets = new ArrayList<>();
        for (int i = 0; i < latencies.size(); i++) {
            long[] sorted = Arrays.copyOf(latencies.get(i), sizes.get(i));
            Arrays.sort(sorted);
            buckets.add(new Bucket(i * bucketMillis / 1000, sorted.length, sorted.length * 1000.0 / bucketMillis,
                    percentile(sorted, 0.50), percentile(sorted, 0.99)));
        }
        return buckets;
    }

    /** The {@code q} quantile of every latency recorded, in milliseconds (0 when none was). */
    synchronized long latencyPercentile(double q) {
        long[] all = new long[sizes.stream().mapToInt(Integer::intValue).sum()];
        int at = 0;
        for (int i = 0; i < latencies.size(); i++) {
            System.arraycopy(latencies.get(i), 0, all, at, sizes.get(i));
            at += sizes.get(i);
        }
        Arrays.sort(all);
        return percentile(all, q);
    }

    private static long percentile(long[] sorted, double q) {
        return sorted.length == 0 ? 0 : sorted[(int) Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    }
}
