package org.flinkbridge.job.io;

import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.flinkbridge.records.BridgeRecord;

/**
 * The generator source's events: JSON objects {@code {"id":N,"key":"key-K","value":V}} with event time
 * {@link #EPOCH_MILLIS} + N. Everything derives from the index and the seed, so two runs (or two transports)
 * see the same events.
 */
final class GeneratedEvents implements GeneratorFunction<Long, BridgeRecord> {

    /** Event time of event 0: 2025-01-01T00:00:00Z. */
    static final long EPOCH_MILLIS = 1_735_689_600_000L;

    private final int keys;
    private final long seed;

    GeneratedEvents(int keys, long seed) {
        this.keys = keys;
        this.seed = seed;
    }

    @Override
    public BridgeRecord map(Long index) {
        long mixed = mix(index ^ seed);
        String json = "{\"id\":" + index + ",\"key\":\"key-" + Math.floorMod(mixed, keys) + "\",\"value\":"
                + Math.floorMod(mixed >>> 16, 1_000_000) + "}";
        return BridgeRecord.ofUtf8(json, EPOCH_MILLIS + index);
    }

    /** A stateless 64-bit mixer (SplitMix64's finaliser): spreads keys and values evenly. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
