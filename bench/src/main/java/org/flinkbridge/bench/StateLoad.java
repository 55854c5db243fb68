package org.flinkbridge.bench;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.flinkbridge.records.BridgeRecord;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * The state benchmark's input, in three phases, one record per input index, {@code {"id":I,"key":"key-K"}} with the
 * key also in the header {@value #KEY_HEADER}:
 *
 * <ol>
 *   <li><b>build</b>: every one of {@code keys} keys once, in order, as fast as it goes;
 *   <li><b>steady</b>: {@code rounds} rounds of {@link #perRound()} records (1% of the keys), one round per checkpoint
 *   interval, each key drawn at random: uniformly, or by a Zipf law of {@code zipfExponent} over the keys' ranks
 *   (key-0 the most frequent) when that is above 0;
 *   <li><b>hot</b>: {@code keys} records (at least one) over the {@link #hotKeys()} first keys in turn, as fast as it
 *   goes: after the first pass their cells stay resident, so the step runs on resident keys;
 *   <li><b>recovery</b>: {@link #recoveryRecords()} records (1% of the keys), drawn as the steady phase's, in two
 *   halves: the first held until {@link #startRecovery} completes, the second (from {@link #resumeIndex()}) until
 *   {@link #resume} does. The benchmark kills the workers between them: the first half is in the bridge's journal, to
 *   be replayed, the second is input that the new session must answer.
 * </ol>
 *
 * <p>After the last record the source neither ends nor sends anything until {@link #release} completes, so that the
 * job's last checkpoints stay on disk (a finished job's are removed) while the benchmark reads them.
 *
 * @param keys distinct keys
 * @param rounds rounds of the steady phase
 * @param intervalMillis the time a steady round takes: the checkpoint interval
 * @param zipfExponent the skew of the steady phase's keys; 0 for uniform
 * @param seed the seed of the draws
 */
record StateLoad(long keys, int rounds, long intervalMillis, double zipfExponent, long seed) implements Serializable {

    /** The header that carries a record's key, for steps that keep their own state by key. */
    static final String KEY_HEADER = "key";

    /** Completed by the benchmark once it has read what it needs of a run; reset before each run. */
    private static volatile CompletableFuture<Void> release = new CompletableFuture<>();
    /** Completed by the benchmark to let the recovery phase's first half go; reset before each run. */
    private static volatile CompletableFuture<Void> startRecovery = new CompletableFuture<>();
    /** Completed by the benchmark to let the recovery phase's second half go (once it killed the workers). */
    private static volatile CompletableFuture<Void> resume = new CompletableFuture<>();

    StateLoad {
        if (keys < 1 || rounds < 1 || intervalMillis < 1 || zipfExponent < 0) {
            throw new IllegalArgumentException("a state load needs at least one key, one round and a 1 ms interval,"
                    + " and a Zipf exponent of at least 0 (0: uniform): " + keys + " keys, " + rounds + " rounds, "
                    + intervalMillis + " ms, exponent " + zipfExponent);
        }
    }

    /** Records of one steady round: 1% of the keys, at least one. */
    long perRound() {
        return Math.max(1, keys / 100);
    }

    /** The keys of the hot phase: 1% of them, at least one. */
    long hotKeys() {
        return Math.max(1, keys / 100);
    }

    long steadyRecords() {
        return rounds * perRound();
    }

    long hotRecords() {
        return keys;
    }

    /** Records of the recovery phase: 1% of the keys, at least one. */
    long recoveryRecords() {
        return perRound();
    }

    /** The index of the recovery phase's first record. */
    long recoveryStart() {
        return keys + steadyRecords() + hotRecords();
    }

    /** The index of the recovery phase's second half's first record: the first input sent after the kill. */
    long resumeIndex() {
        return recoveryStart() + recoveryRecords() / 2;
    }

    long records() {
        return recoveryStart() + recoveryRecords();
    }

    /** The key of input {@code index}, as a number in [0, keys). */
    long keyOf(long index) {
        if (index < keys) {
            return index;
        }
        long steady = index - keys;
        if (steady < steadyRecords() || index >= recoveryStart()) {
            return draw(new SplittableRandom(seed + index).nextDouble());
        }
        return (steady - steadyRecords()) % hotKeys();
    }

    /**
     * The count each record of the recovery phase must find its key at once it is processed, in order: how many
     * records of its key there are up to it, itself included. A step counting its key's records exactly once gives
     * these, before and after a worker is lost.
     */
    long[] recoveryCounts() {
        Map<Long, Long> counts = new HashMap<>();
        for (long index = recoveryStart(); index < records(); index++) {
            counts.put(keyOf(index), 0L);
        }
        // The build: each key once; then every record up to the recovery phase.
        counts.replaceAll((key, none) -> 1L);
        for (long index = keys; index < recoveryStart(); index++) {
            counts.computeIfPresent(keyOf(index), (key, count) -> count + 1);
        }
        long[] expected = new long[(int) recoveryRecords()];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = counts.merge(keyOf(recoveryStart() + i), 1L, Long::sum);
        }
        return expected;
    }

    /**
     * The key of a uniform draw {@code u} in [0, 1): uniform over the keys, or the rank of a Zipf law (by inverting
     * the continuous approximation of its distribution, where the rank r has weight r^-s) less one.
     */
    long draw(double u) {
        if (zipfExponent == 0) {
            return Math.min(keys - 1, (long) (u * keys));
        }
        double rank;
        if (Math.abs(zipfExponent - 1) < 1e-9) {
            rank = Math.pow(keys + 1.0, u);
        } else {
            double oneLess = 1 - zipfExponent;
            rank = Math.pow(u * (Math.pow(keys + 1.0, oneLess) - 1) + 1, 1 / oneLess);
        }
        return Math.min(keys - 1, Math.max(0, (long) rank - 1));
    }

    /** The distinct keys round {@code round} (from 0) of the steady phase changes. */
    long distinctKeysOfRound(int round) {
        Set<Long> distinct = new HashSet<>();
        long first = keys + round * perRound();
        for (long index = first; index < first + perRound(); index++) {
            distinct.add(keyOf(index));
        }
        return distinct.size();
    }

    /** A fresh release, and fresh gates of the recovery phase, for the next run. */
    static void resetRelease() {
        release = new CompletableFuture<>();
        startRecovery = new CompletableFuture<>();
        resume = new CompletableFuture<>();
    }

    /** Lets the source of the run in progress end, the recovery phase's records first where they are still held. */
    static void release() {
        startRecovery.complete(null);
        resume.complete(null);
        release.complete(null);
    }

    /** Lets the recovery phase's first half go. */
    static void startRecovery() {
        startRecovery.complete(null);
    }

    /** Lets the recovery phase's second half go. */
    static void resume() {
        resume.complete(null);
    }

    /** The source of this load: parallelism 1, the steady rounds paced by its rate limiter. */
    DataGeneratorSource<BridgeRecord> source() {
        GeneratorFunction<Long, BridgeRecord> events = index -> {
            String key = "key-" + keyOf(index);
            return new BridgeRecord(("{\"id\":" + index + ",\"key\":\"" + key + "\"}").getBytes(
                    StandardCharsets.UTF_8), Map.of(KEY_HEADER, key), index);
        };
        return new DataGeneratorSource<>(events, records(), new Pacing(this), TypeInformation.of(BridgeRecord.class));
    }

    /**
     * Holds each steady round until its interval starts, the recovery phase's halves until {@link #startRecovery} and
     * {@link #resume}, and the end of input until {@link #release}.
     */
    record Pacing(StateLoad load) implements RateLimiterStrategy {
        @Override
        public RateLimiter createRateLimiter(int parallelism) {
            return new RateLimiter() {
                private long calls;
                private long steadyStartNanos;

                @Override
                public CompletionStage<Void> acquire(int permits) {
                    // Call N comes before record N, and call records() before the end of input.
                    long call = calls++;
                    if (call == load.records()) {
                        return release;
                    }
                    if (call == load.resumeIndex()) {
                        return call == load.recoveryStart() ? startRecovery.thenCombine(resume, (a, b) -> null)
                                : resume;
                    }
                    if (call == load.recoveryStart()) {
                        return startRecovery;
                    }
                    long steady = call - load.keys();
                    if (steady < 0 || steady >= load.steadyRecords() || steady % load.perRound() != 0) {
                        return CompletableFuture.completedFuture(null);
                    }
                    long now = System.nanoTime();
                    if (steady == 0) {
                        steadyStartNanos = now;
                    }
                    long due = steadyStartNanos + steady / load.perRound() * load.intervalMillis() * 1_000_000;
                    if (due <= now) {
                        return CompletableFuture.completedFuture(null);
                    }
                    return new CompletableFuture<Void>().completeOnTimeout(null, due - now, TimeUnit.NANOSECONDS);
                }
            };
        }
    }
}
