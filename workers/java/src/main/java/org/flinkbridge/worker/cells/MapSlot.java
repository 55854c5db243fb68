package org.flinkbridge.worker.cells;

import com.google.protobuf.UnsafeByteOperations;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.KeyCells;

import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiConsumer;

/**
 * A map cell of one key: its entries in unsigned byte order of their keys, and what changed since the last
 * barrier (whether it was cleared, and which entries were put or removed since), from which the barrier writes
 * the final state of each changed entry after the clear.
 */
final class MapSlot {

    /** An entry's value and when it was written. */
    private static final class Entry {
        byte[] value;
        long writtenAt;

        Entry(byte[] value, long writtenAt) {
            this.value = value;
            this.writtenAt = writtenAt;
        }
    }

    private final TreeMap<Bytes, Entry> entries = new TreeMap<>();
    /** Entries put or removed since the last barrier; made on the first change. */
    private TreeSet<Bytes> changed;
    private boolean cleared;
    /** The lengths of every entry's key and value (the step's bytes, without a TTL's write time). */
    private long entryBytes;

    byte[] get(Bytes key, long ttl, long now) {
        Entry entry = entries.get(key);
        return entry == null || CellTtl.expired(entry.writtenAt, ttl, now) ? null : entry.value;
    }

    /** @param probe the key, a probe: copied when the entry is new */
    void put(Bytes probe, byte[] value, long now) {
        Map.Entry<Bytes, Entry> known = entries.ceilingEntry(probe);
        if (known != null && known.getKey().equals(probe)) {
            entryBytes += value.length - known.getValue().value.length;
            known.getValue().value = value;
            known.getValue().writtenAt = now;
            changed().add(known.getKey());
            return;
        }
        Bytes key = Bytes.copyOf(probe.bytes());
        entries.put(key, new Entry(value, now));
        entryBytes += key.bytes().length + value.length;
        changed().add(key);
    }

    /** @return whether an entry was there to remove */
    boolean remove(Bytes probe) {
        Bytes known = entries.ceilingKey(probe);
        if (known == null || !known.equals(probe)) {
            return false;
        }
        Entry gone = entries.remove(known);
        entryBytes -= known.bytes().length + gone.value.length;
        changed().add(known);
        return true;
    }

    /** @return whether it changed (an empty map with no change stays as it was) */
    boolean clear() {
        if (entries.isEmpty() && !cleared && (changed == null || changed.isEmpty())) {
            return false;
        }
        entries.clear();
        entryBytes = 0;
        if (changed != null) {
            changed.clear();
        }
        cleared = true;
        return true;
    }

    void forEach(long ttl, long now, BiConsumer<byte[], byte[]> action) {
        for (Map.Entry<Bytes, Entry> entry : entries.entrySet()) {
            Entry value = entry.getValue();
            if (!CellTtl.expired(value.writtenAt, ttl, now)) {
                action.accept(entry.getKey().bytes(), value.value);
            }
        }
    }

    /** What a LOAD gives: not a change. */
    void load(byte[] key, byte[] value, long writtenAt) {
        Entry replaced = entries.put(Bytes.wrap(key), new Entry(value, writtenAt));
        entryBytes += value.length + (replaced == null ? key.length : -replaced.value.length);
    }

    /**
     * The bytes it takes as stored: every entry's key and value, the value behind its write time where the cell has
     * a TTL (entries gone by their TTL included while it holds them).
     */
    long storedBytes(long ttl) {
        return entryBytes + (ttl > 0 ? (long) CellTtl.PREFIX * entries.size() : 0);
    }

    private TreeSet<Bytes> changed() {
        if (changed == null) {
            changed = new TreeSet<>();
        }
        return changed;
    }

    /** Its writes in the order to apply them (the clear first), into {@code writes}; clean afterwards. */
    void takeWrites(int cell, long ttl, KeyCells.Builder writes) {
        if (cleared) {
            writes.addWritesBuilder().setCell(cell).setOp(CellOp.CELL_OP_CLEAR);
        }
        if (changed != null) {
            for (Bytes key : changed) {
                Entry entry = entries.get(key);
                if (entry != null) {
                    writes.addWritesBuilder().setCell(cell).setOp(CellOp.CELL_OP_PUT)
                            .setEntryKey(UnsafeByteOperations.unsafeWrap(key.bytes()))
                            .setValue(UnsafeByteOperations.unsafeWrap(CellTtl.onWire(entry.value, entry.writtenAt,
                                    ttl)));
                } else if (!cleared) {
                    writes.addWritesBuilder().setCell(cell).setOp(CellOp.CELL_OP_REMOVE)
                            .setEntryKey(UnsafeByteOperations.unsafeWrap(key.bytes()));
                }
            }
            changed.clear();
        }
        cleared = false;
    }

    /** Its entries as a LOAD would carry them, if it holds any. */
    void content(int cell, long ttl, KeyCells.Builder contents) {
        if (entries.isEmpty()) {
            return;
        }
        CellContent.Builder content = contents.addCellsBuilder().setCell(cell);
        for (Map.Entry<Bytes, Entry> entry : entries.entrySet()) {
            content.addEntries(CellEntry.newBuilder().setKey(UnsafeByteOperations.unsafeWrap(entry.getKey().bytes()))
                    .setValue(UnsafeByteOperations.unsafeWrap(CellTtl.onWire(entry.getValue().value,
                            entry.getValue().writtenAt, ttl))));
        }
    }

    boolean isEmpty() {
        return entries.isEmpty();
    }
}
