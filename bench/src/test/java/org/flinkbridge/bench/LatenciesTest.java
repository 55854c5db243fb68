package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LatenciesTest {

    /** 200 latencies of 1 to 200 µs, as the timers' benchmark measures 200 batches. */
    private static final Latencies.Run RUN = new Latencies.Run(200, 1, LongStream.rangeClosed(1, 200)
            .map(micros -> micros * 1_000).toArray(), List.of(), 0, 0);

    @Test
    void percentilesAreTheNearestRank() {
        assertEquals(100, RUN.percentileMicros(50), 1e-9);
        assertEquals(198, RUN.percentileMicros(99), 1e-9);
        assertEquals(200, RUN.percentileMicros(99.9), 1e-9);
    }

    @Test
    void theHundredthPercentileIsTheMaximumAndTheFirstTheMinimum() {
        assertEquals(200, RUN.percentileMicros(100), 1e-9);
        assertEquals(1, RUN.percentileMicros(0), 1e-9);
    }

    @Test
    void noLatencyGivesNoPercentile() {
        assertTrue(Double.isNaN(new Latencies.Run(0, 0, new long[0], List.of(), 0, 0).percentileMicros(99)));
    }
}
