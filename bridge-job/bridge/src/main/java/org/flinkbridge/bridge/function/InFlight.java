package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.InputKind;
import org.flinkbridge.records.BridgeRecord;

/**
 * The inputs sent to the worker and not yet fully answered, oldest first: a ring of what each input is and,
 * for a watermark, its timestamp; for a record, the record itself, which a failed input sends to the dead letters. Sequences are consecutive, so the oldest one is all that is stored besides
 * them. The kind is kept apart from the timestamp so that every long, {@code Long.MIN_VALUE} included, is a
 * watermark that can be forwarded.
 */
final class InFlight {

    private static final InputKind[] KINDS = InputKind.values();

    private final byte[] kinds;
    private final long[] watermarks;
    private final BridgeRecord[] records;
    /** The key of a record or a timer of a keyed session, whose timers its answer changes. */
    private final String[] keys;
    private long oldest;
    private int size;

    InFlight(int capacity) {
        this.kinds = new byte[capacity];
        this.watermarks = new long[capacity];
        this.records = new BridgeRecord[capacity];
        this.keys = new String[capacity];
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

    /** Adds an input that is neither a record nor a watermark; returns its sequence number. */
    long add(InputKind kind) {
        if (kind == InputKind.WATERMARK || kind == InputKind.RECORD || kind == InputKind.TIMER) {
            throw new IllegalArgumentException("a " + kind + " is added with its value");
        }
        return add(kind, 0);
    }

    /** Adds a record input, with its key in a keyed session (else null); returns its sequence number. */
    long addRecord(BridgeRecord record, String key) {
        long sequence = add(InputKind.RECORD, 0);
        records[(int) (sequence % kinds.length)] = record;
        keys[(int) (sequence % kinds.length)] = key;
        return sequence;
    }

    /** Adds a timer of {@code key} that fires; returns its sequence number. */
    long addTimer(String key) {
        long sequence = add(InputKind.TIMER, 0);
        keys[(int) (sequence % kinds.length)] = key;
        return sequence;
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

    /** The oldest input, when it is a {@link InputKind#RECORD}. */
    BridgeRecord oldestRecord() {
        return records[(int) (oldest % kinds.length)];
    }

    /** The key of the oldest input, when it is a record or a timer of a keyed session. */
    String oldestKey() {
        return keys[(int) (oldest % kinds.length)];
    }

    void removeOldest() {
        records[(int) (oldest % kinds.length)] = null;
        keys[(int) (oldest % kinds.length)] = null;
        oldest++;
        size--;
    }
}
