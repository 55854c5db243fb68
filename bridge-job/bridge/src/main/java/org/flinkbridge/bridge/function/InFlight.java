package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.InputKind;

/**
 * The inputs sent to the worker and not yet fully answered, oldest first: a ring of what each input is and,
 * for a watermark, its timestamp. Sequences are consecutive, so the oldest one is all that is stored besides
 * them. The kind is kept apart from the timestamp so that every long, {@code Long.MIN_VALUE} included, is a
 * watermark that can be forwarded.
 */
final class InFlight {

    private static final InputKind[] KINDS = InputKind.values();

    private final byte[] kinds;
    private final long[] watermarks;
    private long oldest;
    private int size;

    InFlight(int capacity) {
        this.kinds = new byte[capacity];
        this.watermarks = new long[capacity];
    }

    int size() {
        return size;
    }

    int capacity() {
        return kinds.length;
    }

    boolean isFull() {
        return size == kinds.length;
    }

    /** The sequence number the next input gets. */
    long nextSequence() {
        return oldest + size;
    }

    /** Adds an input that is not a watermark; returns its sequence number. */
    long add(InputKind kind) {
        if (kind == InputKind.WATERMARK) {
            throw new IllegalArgumentException("a watermark is added with its timestamp");
        }
        return add(kind, 0);
    }

    /** Adds an event-time watermark of {@code timestamp}; returns its sequence number. */
    long addWatermark(long timestamp) {
        return add(InputKind.WATERMARK, timestamp);
    }

    private long add(InputKind kind, long timestamp) {
        if (isFull()) {
            throw new IllegalStateException("more than " + kinds.length + " inputs in flight");
        }
        long sequence = nextSequence();
        int slot = (int) (sequence % kinds.length);
        kinds[slot] = (byte) kind.ordinal();
        watermarks[slot] = timestamp;
        size++;
        return sequence;
    }

    /** The oldest unanswered sequence; only valid when not empty. */
    long oldest() {
        return oldest;
    }

    /** What the oldest input is; only valid when not empty. */
    InputKind oldestKind() {
        return KINDS[kinds[(int) (oldest % kinds.length)]];
    }

    /** The timestamp of the oldest input, when it is a {@link InputKind#WATERMARK}. */
    long oldestWatermark() {
        return watermarks[(int) (oldest % kinds.length)];
    }

    void removeOldest() {
        oldest++;
        size--;
    }
}
