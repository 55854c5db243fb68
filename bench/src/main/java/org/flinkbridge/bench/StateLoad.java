package org.flinkbridge.bench;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.flinkbridge.records.BridgeRecord;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
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
 *   goes: after the first pass their cells stay resident, so the step runs on resident keys.
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

    long records() {
        return keys + steadyRecords() + hotRecords();
    }

    /** The key of input {@code index}, as a number in [0, keys). */
    long keyOf(long index) {
        if (index < keys) {
            return index;
        }
        long steady = index - keys;
        if (steady < steadyRecords()) {
            return draw(new SplittableRandom(seed + index).nextDouble());
        }
        return (steady - steadyRecords()) % hotKeys();
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

    /** A fresh release for the next run. */
    static void resetRelease() {
        release = new CompletableFuture<>();
    }

    /** Lets the source of the run in progress end. */
    static void release() {
        release.complete(null);
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

    /** Holds each steady round until its interval starts, and the end of input until {@link #release}. */
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
