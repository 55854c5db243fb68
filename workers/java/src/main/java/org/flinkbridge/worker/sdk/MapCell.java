package org.flinkbridge.worker.sdk;

import java.util.function.BiConsumer;

/**
 * A step's named map of byte keys to byte values for the record's key (a cell, declared in {@link Step#open} with
 * {@link StepContext#mapCell}): read and written while a record is handled, it is that record's key's. Entry keys
 * are compared by content. The bridge keeps it in Flink's keyed state (a {@code MapState}), so it is checkpointed,
 * restored and rescaled with its key.
 *
 * <p>The map copies entry keys it is given, but keeps the value arrays and hands them back: change neither a value
 * given to {@link #put} nor one {@link #get} or {@link #forEach} gave (put a new array instead). Called outside the
 * handling of a record, every method throws {@link IllegalStateException}.
 */
public interface MapCell {

    /** The value of entry {@code key}; null when there is none, or when its TTL has passed. */
    byte[] get(byte[] key);

    /** Sets entry {@code key} to {@code value} (not null). */
    void put(byte[] key, byte[] value);

    /** Removes entry {@code key}, if there is one. */
    void remove(byte[] key);

    /** Removes every entry. */
    void clear();

    /**
     * Hands every entry whose TTL has not passed to {@code action}, in unsigned byte order of the keys (the same
     * order after the key's cells are loaded again, so a step that emits in it stays deterministic). The key array
     * is the map's own: do not change it. {@code action} may {@link #put} over an entry it is given, but not add or
     * remove entries (a {@link java.util.ConcurrentModificationException}).
     */
    void forEach(BiConsumer<byte[], byte[]> action);
}
