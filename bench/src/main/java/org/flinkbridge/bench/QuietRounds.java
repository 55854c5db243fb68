package org.flinkbridge.bench;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.flinkbridge.records.BridgeRecord;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * A source of rounds on a stream that goes quiet: each round is one record for each of {@code keys} keys at once,
 * {@code {"id":N,"key":"key-K"}} with K = N mod {@code keys}, and the source is quiet for {@code quietMillis} before
 * each round and after the last one (so the last round's records do not meet the end of input). The quiet is the
 * source's rate limiter, which Flink asks before each record and once more before the end of input: the task
 * thread is not blocked meanwhile.
 */
final class QuietRounds {

    private QuietRounds() {}

    /** {@code rounds} rounds of {@code keys} records. */
    static DataGeneratorSource<BridgeRecord> source(int rounds, int keys, long quietMillis) {
        GeneratorFunction<Long, BridgeRecord> events =
                index -> BridgeRecord.ofUtf8("{\"id\":" + index + ",\"key\":\"key-" + index % keys + "\"}", index);
        return new DataGeneratorSource<>(events, (long) rounds * keys, new Pauses(keys, quietMillis),
                TypeInformation.of(BridgeRecord.class));
    }

    private record Pauses(int keys, long quietMillis) implements RateLimiterStrategy {
        @Override
        public RateLimiter createRateLimiter(int parallelism) {
            return new RateLimiter() {
                private long calls;

                @Override
                public CompletionStage<Void> acquire(int permits) {
                    // Call N comes before record N, and call rounds * keys before the end of input.
                    if (calls++ % keys != 0) {
                        return CompletableFuture.completedFuture(null);
                    }
                    return new CompletableFuture<Void>().completeOnTimeout(null, quietMillis, TimeUnit.MILLISECONDS);
                }
            };
        }
    }
}
