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
        Arrays.sort(all);
        assertEquals(all[(int) Math.ceil(0.50 * all.length) - 1], timeline.latencyPercentile(0.50));
        assertEquals(all[(int) Math.ceil(0.99 * all.length) - 1], timeline.latencyPercentile(0.99));
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
}
