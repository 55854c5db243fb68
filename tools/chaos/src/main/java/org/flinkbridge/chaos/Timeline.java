package org.flinkbridge.chaos;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * When the committed output was read and how late each record was (read time minus its input's Kafka timestamp,
 * which the job carries through), in buckets of fixed length from the start of a run; thread-safe. Latencies are
 * counted by millisecond, per bucket and for the whole run, so the memory grows with the largest latency and the
 * run's length, not with its records: a 10-minute run at 130,000 records/s (78 million) once filled the oracle
 * container's heap when each latency was kept.
 */
final class Timeline {

    /** A latency past this counts as this: a bound on a histogram's length (10 minutes). */
    static final int MAX_LATENCY_MILLIS = 600_000;

    /** One bucket: its start (seconds from the run's start), outputs read in it and their latency percentiles. */
    record Bucket(long startSecond, long outputs, double recordsPerSecond, long latencyP50Millis,
                  long latencyP99Millis) {}

    private final long startMillis;
    private final long bucketMillis;
    private final List<LatencyCounts> buckets = new ArrayList<>();
    private final LatencyCounts run = new LatencyCounts();
    private long firstReadMillis = Long.MAX_VALUE;
    private long lastReadMillis = Long.MIN_VALUE;

    Timeline(long startMillis, long bucketMillis) {
        this.startMillis = startMillis;
        this.bucketMillis = bucketMillis;
    }

    /** A record read at {@code readMillis}; a negative latency, from clocks apart, counts as 0. */
    synchronized void add(long readMillis, long latencyMillis) {
        firstReadMillis = Math.min(firstReadMillis, readMillis);
        lastReadMillis = Math.max(lastReadMillis, readMillis);
        int latency = (int) Math.min(MAX_LATENCY_MILLIS, Math.max(0, latencyMillis));
        int bucket = (int) Math.max(0, (readMillis - startMillis) / bucketMillis);
        while (buckets.size() <= bucket) {
            buckets.add(new LatencyCounts());
        }
        buckets.get(bucket).add(latency);
        run.add(latency);
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
        List<Bucket> result = new ArrayList<>();
        for (int i = 0; i < buckets.size(); i++) {
            LatencyCounts bucket = buckets.get(i);
            result.add(new Bucket(i * bucketMillis / 1000, bucket.total, bucket.total * 1000.0 / bucketMillis,
                    bucket.percentile(0.50), bucket.percentile(0.99)));
        }
        return result;
    }

    /** The {@code q} quantile of every latency recorded, in milliseconds (0 when none was). */
    synchronized long latencyPercentile(double q) {
        return run.percentile(q);
    }

    /** Records counted by their latency in whole milliseconds. */
    private static final class LatencyCounts {
        private long[] counts = new long[256];
        private long total;

        void add(int millis) {
            if (millis >= counts.length) {
                counts = Arrays.copyOf(counts, Math.min(MAX_LATENCY_MILLIS + 1, Math.max(millis + 1, counts.length * 2)));
            }
            counts[millis]++;
            total++;
        }

        /** The nearest-rank {@code q} quantile, in milliseconds (0 when nothing was counted). */
        long percentile(double q) {
            if (total == 0) {
                return 0;
            }
            long rank = Math.max(0, Math.min(total - 1, (long) Math.ceil(q * total) - 1));
            long seen = 0;
            for (int millis = 0; millis < counts.length; millis++) {
                seen += counts[millis];
                if (seen > rank) {
                    return millis;
                }
            }
            throw new IllegalStateException("the counts hold fewer than " + total + " latencies");
        }
    }
}
