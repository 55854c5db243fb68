package org.flinkbridge.chaos;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TimelineTest {

    @Test
    void theRunsPercentilesAreTheNearestRanksOfEveryLatency() {
        Timeline timeline = new Timeline(0, 1_000);
        Random random = new Random(7);
        long[] all = new long[100_001];
        for (int i = 0; i < all.length; i++) {
            all[i] = random.nextInt(i % 10 == 0 ? 30_000 : 2_000);
            timeline.add(i / 10, all[i]);
        }
        assertEquals(nearestRank(all, 0.50), timeline.latencyPercentile(0.50));
        assertEquals(nearestRank(all, 0.99), timeline.latencyPercentile(0.99));
    }

    @Test
    void eachBucketCountsItsRecordsAndLatencies() {
        Timeline timeline = new Timeline(10_000, 5_000);
        timeline.add(10_000, 4);
        timeline.add(14_999, 2);
        timeline.add(21_000, -3);
        assertEquals(List.of(new Timeline.Bucket(0, 2, 0.4, 2, 4), new Timeline.Bucket(5, 0, 0.0, 0, 0),
                new Timeline.Bucket(10, 1, 0.2, 0, 0)), timeline.buckets());
        assertEquals(0, new Timeline(0, 1).latencyPercentile(0.99));
    }

    @Test
    void aBucketsPercentilesAreTheNearestRanksOfItsLatencies() {
        Timeline timeline = new Timeline(0, 1_000);
        Random random = new Random(11);
        long[] second = new long[5_001];
        for (int i = 0; i < second.length; i++) {
            second[i] = random.nextInt(i % 7 == 0 ? 20_000 : 900);
            timeline.add(1_000 + i % 1_000, second[i]);
            timeline.add(0, 1);
        }
        Timeline.Bucket bucket = timeline.buckets().get(1);
        assertEquals(second.length, bucket.outputs());
        assertEquals(nearestRank(second, 0.50), bucket.latencyP50Millis());
        assertEquals(nearestRank(second, 0.99), bucket.latencyP99Millis());
        assertEquals(1, timeline.buckets().get(0).latencyP99Millis());
    }

    @Test
    void aLatencyPastTenMinutesCountsAsTenMinutes() {
        Timeline timeline = new Timeline(0, 1_000);
        timeline.add(0, Long.MAX_VALUE);
        timeline.add(0, 5);
        assertEquals(Timeline.MAX_LATENCY_MILLIS, timeline.latencyPercentile(0.99));
        assertEquals(Timeline.MAX_LATENCY_MILLIS, timeline.buckets().getFirst().latencyP99Millis());
    }

    /** The nearest-rank {@code q} quantile of {@code values} (sorted here). */
    private static long nearestRank(long[] values, double q) {
        Arrays.sort(values);
        return values[(int) Math.ceil(q * values.length) - 1];
    }
}
