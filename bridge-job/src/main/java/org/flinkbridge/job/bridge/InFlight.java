package org.flinkbridge.job.bridge;

/**
 * The inputs sent to the worker and not yet fully answered, oldest first: a ring of sequence numbers with
 * the watermark each one carries ({@link #NO_WATERMARK} for a record, {@link #END_OF_INPUT} for the end
 * marker, {@link #BARRIER} for a checkpoint's flush marker). Sequences are consecutive, so the oldest one
 * is all that is stored besides the watermarks.
 */
final class InFlight {

    static final long NO_WATERMARK = Long.MIN_VALUE;
    static final long END_OF_INPUT = Long.MIN_VALUE + 1;
    static final long BARRIER = Long.MIN_VALUE + 2;

    /** Whether an input carrying {@code watermark} is an event-time watermark to forward once answered. */
    static boolean isWatermark(long watermark) {
        return watermark != NO_WATERMARK && watermark != END_OF_INPUT && watermark != BARRIER;
    }

    private final long[] watermarks;
    private long oldest;
    private int size;

    InFlight(int capacity) {
        this.watermarks = new long[capacity];
    }

    int size() {
        return size;
    }

    boolean isFull() {
        return size == watermarks.length;
    }

    /** The sequence number the next input gets. */
    long nextSequence() {
        return oldest + size;
    }

    long add(long watermark) {
        if (isFull()) {
            throw new IllegalStateException("more than " + watermarks.length + " inputs in flight");
        }
        long sequence = nextSequence();
        watermarks[(int) (sequence % watermarks.length)] = watermark;
        size++;
        return sequence;
    }

    /** The oldest unanswered sequence; only valid when not empty. */
    long oldest() {
        return oldest;
    }

    /** Removes the oldest input and returns its watermark. */
    long removeOldest() {
        long watermark = watermarks[(int) (oldest % watermarks.length)];
        oldest++;
        size--;
        return watermark;
    }
}
