package org.flinkbridge.worker.cells;

import java.util.Arrays;

/**
 * The cells of one key the bridge loaded into the session: a slot per declared cell, made when first used (a
 * {@link ValueSlot} or a {@link MapSlot} by the cell's kind), and whether any changed since the last barrier.
 */
final class ResidentKey {

    final Bytes key;
    private final Object[] slots;
    /** Some cell changed since the last barrier. */
    boolean dirty;
    /** In the session's list of keys to look at when the barrier comes (reset by a LOAD does not take it out). */
    boolean listed;

    ResidentKey(Bytes key, int cells) {
        this.key = key;
        this.slots = new Object[cells];
    }

    ValueSlot value(int cell) {
        Object slot = slots[cell];
        if (slot == null) {
            slot = new ValueSlot();
            slots[cell] = slot;
        }
        return (ValueSlot) slot;
    }

    MapSlot map(int cell) {
        Object slot = slots[cell];
        if (slot == null) {
            slot = new MapSlot();
            slots[cell] = slot;
        }
        return (MapSlot) slot;
    }

    /** The slot of {@code cell} if it was ever used: a {@link ValueSlot}, a {@link MapSlot} or null. */
    Object slot(int cell) {
        return slots[cell];
    }

    /** Empty and clean, as a first LOAD leaves a key before its contents. */
    void reset() {
        Arrays.fill(slots, null);
        dirty = false;
    }
}
