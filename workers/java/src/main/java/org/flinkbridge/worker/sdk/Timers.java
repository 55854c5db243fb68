package org.flinkbridge.worker.sdk;

/**
 * A step's timers (declared in {@link Step#open} with {@link StepContext#timers}): set and deleted for the key of the
 * input being handled, a record in {@link Step#process} or a firing in {@link Step#onTimer}. The bridge keeps them in
 * Flink's timer service, so they are checkpointed and move with their key; each fires once as a call to
 * {@link Step#onTimer} with that key current. Setting a timer that is set changes nothing, deleting one that is not
 * set is no error. Called outside the handling of a keyed input (on a watermark, in a snapshot, for a record of a
 * stream that is not keyed), the set and delete methods throw {@link IllegalStateException}.
 */
public interface Timers {

    /** A timer of the current key that fires once the watermark reaches {@code timestamp} (ms). */
    void setEventTime(long timestamp);

    /** Deletes the current key's event-time timer at {@code timestamp}, if it is set. */
    void deleteEventTime(long timestamp);

    /** A timer of the current key that fires once the bridge's clock reaches {@code timestamp} (ms). */
    void setProcessingTime(long timestamp);

    /** Deletes the current key's processing-time timer at {@code timestamp}, if it is set. */
    void deleteProcessingTime(long timestamp);

    /**
     * The session's current watermark: the last one its steps were given ({@link Long#MIN_VALUE} before any). While
     * the event-time timers a watermark passes fire, it is still the one before.
     */
    long currentWatermark();

    /** Processing time now, as {@link StepContext#currentTimeMillis} reads it (the bridge's clock). */
    long currentProcessingTime();
}
