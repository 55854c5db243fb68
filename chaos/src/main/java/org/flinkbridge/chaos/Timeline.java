package org.flinkbridge.chaos;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * When the committed output was read and how late each record was (read time minus its input's Kafka timestamp,
 * which the job carries through), in buckets of fixed length from the start of a run; thread-safe. Latencies are
 * kept as ints of milliseconds per bucket, and counted in a histogram by millisecond for the run's percentiles,
 * so tens of millions of records fit in the oracle container's heap.
 */
final class Timeline {

    /** One bucket: its start (seconds from the run's start), outputs read in it and their latency percentiles. */
    record Bucket(long startSecond, long outputs, double recordsPerSecond, long latencyP50Millis,
                  long latencyP99Millis) {}

    private final long startMillis;
    private final long bucketMillis;
    private final List<int[]> latencies = new ArrayList<>();
    private final List<Integer> sizes = new ArrayList<>();
    /** Records by latency in milliseconds (a negative latency, from clocks apart, counts as 0). */
    private long[] histogram = new long[1024];
    private long recorded;
    private long firstReadMillis = Long.MAX_VALUE;
    private long lastReadMillis = Long.MIN_VALUE;

    Timeline(long startMillis, long bucketMillis) {
        this.startMillis = startMillis;
        this.bucketMillis = bucketMillis;
    }

    synchronized void add(long readMillis, long latencyMillis) {
        firstReadMillis = Math.min(firstReadMillis, readMillis);
        lastReadMillis = Math.max(lastReadMillis, readMillis);
        int latency = (int) Math.min(Integer.MAX_VALUE - 1, Math.max(0, latencyMillis));
        int bucket = (int) Math.max(0, (readMillis - startMillis) / bucketMillis);
        while (latencies.size() <= bucket) {
            latencies.add(new int[64]);
            sizes.add(0);
        }
        int[] values = latencies.get(bucket);
        int size = sizes.get(bucket);
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
            latencies.set(bucket, values);
        }
        values[size] = latency;
        sizes.set(bucket, size + 1);
        if (latency >= histogram.length) {
            histogram = Arrays.copyOf(histogram, Math.max(latency + 1, histogram.length * 2));
        }
        histogram[latency]++;
        recorded++;
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
            int[] sorted = Arrays.copyOf(latencies.get(i), sizes.get(i));
            Arrays.sort(sorted);
            buckets.add(new Bucket(i * bucketMillis / 1000, sorted.length, sorted.length * 1000.0 / bucketMillis,
                    percentile(sorted, 0.50), percentile(sorted, 0.99)));
        }
        return buckets;
    }

    /** The {@code q} quantile of every latency recorded, in milliseconds (0 when none was). */
    synchronized long latencyPercentile(double q) {
        if (recorded == 0) {
            return 0;
        }
        long rank = rank(recorded, q);
        long seen = 0;
        for (int millis = 0; millis < histogram.length; millis++) {
            seen += histogram[millis];
            if (seen > rank) {
                return millis;
            }
        }
        throw new IllegalStateException("the histogram holds fewer than " + recorded + " latencies");
    }

    private static long percentile(int[] sorted, double q) {
        return sorted.length == 0 ? 0 : sorted[(int) rank(sorted.length, q)];
    }

    /** The 0-based index of the {@code q} quantile among {@code count} sorted values (nearest rank). */
    private static long rank(long count, double q) {
        return Math.max(0, Math.min(count - 1, (long) Math.ceil(q * count) - 1));
    }
}
