package org.flinkbridge.bench;

import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StateLoadTest {

    private static final StateLoad UNIFORM = new StateLoad(10_000, 5, 1_000, 0, 42);

    @Test
    void theBuildWritesEveryKeyOnceInOrder() {
        assertEquals(LongStream.range(0, 10_000).boxed().toList(),
                LongStream.range(0, 10_000).map(UNIFORM::keyOf).boxed().toList());
    }

    @Test
    void theSteadyPhaseChangesAboutOnePercentOfTheKeysPerRound() {
        assertEquals(100, UNIFORM.perRound());
        for (int round = 0; round < UNIFORM.rounds(); round++) {
            long distinct = UNIFORM.distinctKeysOfRound(round);
            assertTrue(distinct >= 95 && distinct <= 100, "round " + round + ": " + distinct + " distinct keys");
        }
    }

    @Test
    void theHotPhaseCyclesThroughTheFirstPercentOfTheKeys() {
        long hotStart = UNIFORM.keys() + UNIFORM.steadyRecords();
        assertEquals(LongStream.range(0, 250).map(i -> i % 100).boxed().toList(),
                LongStream.range(hotStart, hotStart + 250).map(UNIFORM::keyOf).boxed().toList());
        assertEquals(hotStart + UNIFORM.keys(), UNIFORM.recoveryStart());
    }

    @Test
    void theRecoveryPhaseDrawsOnePercentOfTheKeysInTwoHalves() {
        long start = UNIFORM.recoveryStart();
        assertEquals(100, UNIFORM.recoveryRecords());
        assertEquals(start + 50, UNIFORM.resumeIndex());
        assertEquals(start + 100, UNIFORM.records());
        long distinct = LongStream.range(start, UNIFORM.records()).map(UNIFORM::keyOf).distinct().count();
        assertTrue(distinct >= 95, distinct + " distinct keys");
        assertTrue(LongStream.range(start, UNIFORM.records()).map(UNIFORM::keyOf)
                .allMatch(key -> key >= 0 && key < UNIFORM.keys()));
    }

    /** The counts a key's records must find, against counting every record of the load in order. */
    @Test
    void theRecoveryCountsAreEachKeysRecordsSoFar() {
        for (StateLoad load : List.of(UNIFORM, new StateLoad(1_000, 4, 1_000, 1.2, 7),
                new StateLoad(3, 2, 1_000, 0, 1))) {
            Map<Long, Long> counts = new HashMap<>();
            long[] expected = new long[(int) load.recoveryRecords()];
            for (long index = 0; index < load.records(); index++) {
                long count = counts.merge(load.keyOf(index), 1L, Long::sum);
                if (index >= load.recoveryStart()) {
                    expected[(int) (index - load.recoveryStart())] = count;
                }
            }
            assertArrayEquals(expected, load.recoveryCounts(), load.toString());
        }
        // A Zipf law's first key is in the hot phase, the steady phase and the recovery phase: well above 1.
        StateLoad zipf = new StateLoad(1_000, 4, 1_000, 1.2, 7);
        assertTrue(LongStream.of(zipf.recoveryCounts()).max().orElseThrow() > 10);
    }

    /** The first half waits for startRecovery, the second for resume, the end of input for release. */
    @Test
    void theRecoveryPhaseWaitsForItsGates() {
        StateLoad load = new StateLoad(1_000, 1, 1, 0, 42);
        StateLoad.resetRelease();
        try {
            RateLimiter pacing = new StateLoad.Pacing(load).createRateLimiter(1);
            CompletableFuture<Void> call = null;
            long index;
            for (index = 0; index < load.recoveryStart(); index++) {
                pacing.acquire(1).toCompletableFuture().join();
            }
            CompletableFuture<Void> firstHalf = pacing.acquire(1).toCompletableFuture();
            assertFalse(firstHalf.isDone(), "the first half waits");
            StateLoad.startRecovery();
            assertTrue(firstHalf.isDone());
            for (index++; index < load.resumeIndex(); index++) {
                assertTrue(pacing.acquire(1).toCompletableFuture().isDone());
            }
            CompletableFuture<Void> secondHalf = pacing.acquire(1).toCompletableFuture();
            assertFalse(secondHalf.isDone(), "the second half waits");
            StateLoad.resume();
            assertTrue(secondHalf.isDone());
            for (index++; index < load.records(); index++) {
                assertTrue(pacing.acquire(1).toCompletableFuture().isDone());
            }
            call = pacing.acquire(1).toCompletableFuture();
            assertFalse(call.isDone(), "the end of input waits");
            StateLoad.release();
            assertTrue(call.isDone());
        } finally {
            StateLoad.release();
            StateLoad.resetRelease();
        }
    }

    @Test
    void aUniformDrawCoversEveryKeyEvenly() {
        long[] hits = new long[10_000];
        for (int i = 0; i < 1_000_000; i++) {
            hits[(int) UNIFORM.draw((i + 0.5) / 1_000_000)]++;
        }
        assertTrue(LongStream.of(hits).allMatch(count -> count == 100));
    }

    @Test
    void aZipfDrawGivesTheFirstRanksTheirShare() {
        double exponent = 1.2;
        StateLoad zipf = new StateLoad(1_000, 1, 1_000, exponent, 42);
        long[] hits = new long[1_000];
        int draws = 1_000_000;
        for (int i = 0; i < draws; i++) {
            hits[(int) zipf.draw((i + 0.5) / draws)]++;
        }
        // The continuous law's share of ranks [r, r + 1): (F(r + 1) - F(r)), F(x) = (x^(1-s) - 1) / ((n+1)^(1-s) - 1).
        double total = Math.pow(1_001, 1 - exponent) - 1;
        for (int rank = 1; rank <= 3; rank++) {
            double share = (Math.pow(rank + 1, 1 - exponent) - Math.pow(rank, 1 - exponent)) / total;
            assertEquals(share, hits[rank - 1] / (double) draws, 1e-4, "rank " + rank);
        }
        assertTrue(hits[0] > hits[1] && hits[1] > hits[9] && hits[9] > hits[999]);
        assertTrue(LongStream.of(hits).allMatch(count -> count > 0), "every key drawn at least once");
    }

    @Test
    void anExponentOfOneIsAZipfLawToo() {
        StateLoad zipf = new StateLoad(1_000, 1, 1_000, 1, 42);
        assertEquals(0, zipf.draw(0));
        assertEquals(999, zipf.draw(0.999_999_9));
        assertTrue(zipf.draw(0.5) < 100, "half the draws fall on the first 3% of ranks: " + zipf.draw(0.5));
    }

    @Test
    void aLoadWithoutKeysIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new StateLoad(0, 1, 1_000, 0, 42));
    }

    /** A 1,000,000-key run stood still when the benchmark's own wait held the common pool's one thread. */
    @Test
    void aSteadyRoundStartsOnTimeWhileTheCommonPoolIsBusy() throws Exception {
        StateLoad load = new StateLoad(100, 3, 50, 0, 42);
        RateLimiter pacing = new StateLoad.Pacing(load).createRateLimiter(1);
        int workers = ForkJoinPool.commonPool().getParallelism();
        CountDownLatch busy = new CountDownLatch(workers);
        AtomicBoolean done = new AtomicBoolean();
        for (int worker = 0; worker < workers; worker++) {
            ForkJoinPool.commonPool().execute(() -> {
                busy.countDown();
                while (!done.get()) {
                    LockSupport.parkNanos(1_000_000);
                }
            });
        }
        try {
            assertTrue(busy.await(10, TimeUnit.SECONDS), "the common pool's threads did not all start");
            CompletableFuture<Void> secondRound = null;
            for (long call = 0; call <= load.keys() + load.perRound(); call++) {
                secondRound = pacing.acquire(1).toCompletableFuture();
            }
            assertTrue(!secondRound.isDone(), "the second round waits for its interval");
            secondRound.get(10, TimeUnit.SECONDS);
        } finally {
            done.set(true);
        }
    }
}
