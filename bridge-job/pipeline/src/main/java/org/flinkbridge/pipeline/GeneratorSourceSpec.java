package org.flinkbridge.pipeline;

/**
 * Generated JSON events with a {@code key} field that takes {@code keys} distinct values.
 *
 * @param count number of events, or {@code null} for an unbounded stream
 * @param rate  events per second, 0 for as fast as possible
 * @param keys  distinct values of the {@code key} field
 * @param seed  the same seed gives the same events
 */
public record GeneratorSourceSpec(String name, Long count, long rate, int keys, long seed) implements SourceSpec {

    public static final String TYPE = "generator";
    public static final long DEFAULT_RATE = 0;
    public static final int DEFAULT_KEYS = 100;
    public static final long DEFAULT_SEED = 0;

    public GeneratorSourceSpec {
        Checks.nonBlank(name, "source name");
        if (count != null) {
            Checks.atLeast(count, 0, "generator count");
        }
        Checks.atLeast(rate, 0, "generator rate");
        Checks.atLeast(keys, 1, "generator keys");
    }

    @Override
    public boolean bounded() {
        return count != null;
    }
}
