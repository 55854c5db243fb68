package org.flinkbridge.worker.sdk;

/**
 * A step's named value of the record's key (a cell, declared in {@link Step#open} with
 * {@link StepContext#valueCell}): read and written while a record is handled, it is that record's key's. The bridge
 * keeps it in Flink's keyed state, so it is checkpointed, restored and rescaled with its key.
 *
 * <p>The cell keeps the array it is given and {@link #get} hands back that array: change neither afterwards (set a
 * new array instead), or the change is neither written back nor seen consistently. Called outside the handling of a
 * record (on a watermark, in a snapshot), every method throws {@link IllegalStateException}.
 */
public interface ValueCell {

    /** The value of the current record's key; null when it has none, or when its TTL has passed. */
    byte[] get();

    /** Sets the value of the current record's key (not null: {@link #clear} empties it). */
    void set(byte[] value);

    /** Empties the cell of the current record's key. */
    void clear();
}
