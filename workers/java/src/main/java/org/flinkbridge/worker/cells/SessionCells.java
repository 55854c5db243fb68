package org.flinkbridge.worker.cells;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.ValueCell;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A session's cells (docs/protocol.md, "Cells"): the declarations of its steps, the cells of every key the bridge
 * loaded (its resident keys), the key of the record being handled, whose cells the steps' handles reach, and which
 * keys changed since the last barrier. Used by the session's one serving thread at a time.
 */
public final class SessionCells {

    private final SessionClock clock;
    /** The session's records carry their keys ({@code OpenSessionRequest.keyed}). */
    private final boolean keyed;
    private final CellDeclarations declarations = new CellDeclarations();
    private final Map<Bytes, ResidentKey> resident = new HashMap<>();
    /** Keys that may have changed since the last barrier, in the order they first did. */
    private final List<ResidentKey> changed = new ArrayList<>();
    /** Looks up a key without allocating: never stored. */
    private final Bytes probe = Bytes.probe();
    /** A map entry's key, looked up: never stored (a new entry's key is copied). */
    private final Bytes entryProbe = Bytes.probe();
    /** The key of the record being handled; null between records. */
    private ResidentKey current;
    /** The key last entered: records of one key often come in a row. */
    private ResidentKey last;
    /** The key the last LOAD loaded, and its input: a further LOAD of that input adds to it. */
    private ResidentKey loading;
    private long loadingSequence;

    /** The cells of a session that is not keyed (a test's, a tool's): its steps reach them only as a harness lets. */
    public SessionCells(SessionClock clock) {
        this(clock, false);
    }

    /** @param keyed the session's records carry their keys ({@code OpenSessionRequest.keyed}) */
    public SessionCells(SessionClock clock, boolean keyed) {
        this.clock = clock;
        this.keyed = keyed;
    }

    /**
     * Whether the session is keyed: what the built-in steps are built for, those that keep their per-key state in
     * cells there ({@code running_count}, {@code batch}, {@code count}) and in their whole-instance state otherwise.
     */
    public boolean keyed() {
        return keyed;
    }

    public CellDeclarations declarations() {
        return declarations;
    }

    /** Whether the session's steps declared any cell. */
    public boolean declared() {
        return declarations.size() > 0;
    }

    /**
     * The record of {@code key} is handled from now until {@link #leave}: its cells are the steps'.
     *
     * @return false, with no key current, when {@code key} is not resident (the bridge sent no LOAD for it)
     */
    public boolean enter(byte[] key) {
        Bytes wanted = probe.probe(key);
        ResidentKey found = last != null && last.key.equals(wanted) ? last : resident.get(wanted);
        current = found;
        if (found != null) {
            last = found;
        }
        return found != null;
    }

    /** No record is handled: cells are out of reach until the next {@link #enter}. */
    public void leave() {
        current = null;
    }

    /** {@code key} resident with nothing in its cells, unless it is resident already (a test's own loading). */
    public void makeResident(byte[] key) {
        if (!resident.containsKey(probe.probe(key))) {
            Bytes own = Bytes.copyOf(key);
            resident.put(own, new ResidentKey(own, declarations.size()));
        }
    }

    /**
     * A LOAD of input {@code sequence}: the first of an input makes its key resident with exactly these contents,
     * replacing what the session held; a further one of the same input and key adds its cells and entries.
     *
     * @throws IllegalArgumentException naming the key and the cell when a content does not fit its declaration
     */
    public void load(long sequence, KeyCells cells) {
        byte[] key = cells.getKey().toByteArray();
        ResidentKey target;
        if (loading != null && loadingSequence == sequence && loading.key.equals(probe.probe(key))) {
            target = loading;
        } else {
            target = resident.get(probe.probe(key));
            if (target == null) {
                Bytes own = Bytes.wrap(key);
                target = new ResidentKey(own, declarations.size());
                resident.put(own, target);
            } else {
                target.reset();
            }
            loading = target;
            loadingSequence = sequence;
        }
        for (CellContent content : cells.getCellsList()) {
            load(target, content);
        }
    }

    private void load(ResidentKey target, CellContent content) {
        int id = content.getCell();
        if (id < 0 || id >= declarations.size()) {
            throw new IllegalArgumentException("a LOAD of key " + target.key + " names cell " + Integer.toUnsignedString(id)
                    + ", but the session's steps declare " + declarations.size() + " cells");
        }
        CellDeclarations.Declared cell = declarations.get(id);
        if (cell.kind() == CellKind.CELL_KIND_VALUE) {
            if (content.getEntriesCount() > 0) {
                throw new IllegalArgumentException("a LOAD of key " + target.key + " gives map entries to "
                        + cell.describe() + ", a value");
            }
            if (content.hasValue()) {
                byte[] wire = content.getValue().toByteArray();
                target.value(id).load(value(target, cell, wire), writtenAt(wire, cell));
            }
        } else {
            if (content.hasValue()) {
                throw new IllegalArgumentException("a LOAD of key " + target.key + " gives a value to "
                        + cell.describe() + ", a map");
            }
            MapSlot map = target.map(id);
            for (CellEntry entry : content.getEntriesList()) {
                byte[] wire = entry.getValue().toByteArray();
                map.load(entry.getKey().toByteArray(), value(target, cell, wire), writtenAt(wire, cell));
            }
        }
    }

    /** The step's bytes of a loaded value: behind its write time, for a cell with a TTL. */
    private static byte[] value(ResidentKey target, CellDeclarations.Declared cell, byte[] wire) {
        if (cell.ttlMillis() <= 0) {
            return wire;
        }
        if (wire.length < CellTtl.PREFIX) {
            throw new IllegalArgumentException("a LOAD of key " + target.key + " gives " + cell.describe()
                    + ", which has a TTL, a value of " + wire.length + " bytes: its values start with their "
                    + CellTtl.PREFIX + "-byte write time");
        }
        return java.util.Arrays.copyOfRange(wire, CellTtl.PREFIX, wire.length);
    }

    private static long writtenAt(byte[] wire, CellDeclarations.Declared cell) {
        return cell.ttlMillis() > 0 ? CellTtl.writtenAt(wire) : 0;
    }

    /**
     * What changed since the last barrier: one KeyCells per key whose cells changed, its writes in the order to
     * apply them and the bytes its cells take after them ({@code resident_bytes}); every cell clean afterwards.
     */
    public List<KeyCells> takeWrites() {
        List<KeyCells> writes = new ArrayList<>();
        for (ResidentKey key : changed) {
            key.listed = false;
            if (!key.dirty) {
                continue;
            }
            key.dirty = false;
            KeyCells.Builder cells = KeyCells.newBuilder().setKey(UnsafeByteOperations.unsafeWrap(key.key.bytes()));
            for (int id = 0; id < declarations.size(); id++) {
                long ttl = declarations.get(id).ttlMillis();
                switch (key.slot(id)) {
                    case ValueSlot value -> value.takeWrite(id, ttl, cells);
                    case MapSlot map -> map.takeWrites(id, ttl, cells);
                    case null, default -> { }
                }
            }
            if (cells.getWritesCount() > 0) {
                writes.add(cells.setResidentBytes(residentBytes(key)).build());
            }
        }
        changed.clear();
        return writes;
    }

    /**
     * The bytes {@code key}'s cells take as stored (docs/protocol.md, "Eviction"): every value, and every map entry's
     * key and value, a value behind its 8-byte write time where its cell has a TTL. What the worker holds counts,
     * values gone by their TTL included until a write replaces them.
     */
    private long residentBytes(ResidentKey key) {
        long bytes = 0;
        for (int id = 0; id < declarations.size(); id++) {
            long ttl = declarations.get(id).ttlMillis();
            bytes += switch (key.slot(id)) {
                case ValueSlot value -> value.storedBytes(ttl);
                case MapSlot map -> map.storedBytes(ttl);
                case null, default -> 0;
            };
        }
        return bytes;
    }

    /** The bytes resident {@code key}'s cells take as {@code resident_bytes} counts them; -1 when not resident. */
    public long residentBytes(byte[] key) {
        ResidentKey found = resident.get(probe.probe(key));
        return found == null ? -1 : residentBytes(found);
    }

    /**
     * Drops {@code key}'s cells, as a barrier that names it for eviction does once it is answered (docs/protocol.md,
     * "Eviction"): its next record needs a LOAD again. The bridge evicts only keys no input touched since the
     * previous barrier, so they are clean by then.
     *
     * @return whether it was resident (a key that is not is ignored)
     */
    public boolean evict(byte[] key) {
        ResidentKey gone = resident.remove(probe.probe(key));
        if (gone == null) {
            return false;
        }
        if (last == gone) {
            last = null;
        }
        if (loading == gone) {
            loading = null;
        }
        if (current == gone) {
            current = null;
        }
        if (gone.listed) {
            // Changed since the barrier's writes were taken, against the rule: what it changed goes with it.
            changed.remove(gone);
            gone.listed = false;
        }
        return true;
    }

    /** How many keys are resident. */
    public int residentKeys() {
        return resident.size();
    }

    /**
     * Every resident key's cells as LOADs would carry them (what the bridge's keyed state holds once the writes are
     * taken), keys without any left out: for a test's checkpoint.
     */
    public List<KeyCells> contents() {
        List<KeyCells> contents = new ArrayList<>();
        for (ResidentKey key : resident.values()) {
            KeyCells.Builder cells = KeyCells.newBuilder().setKey(ByteString.copyFrom(key.key.bytes()));
            for (int id = 0; id < declarations.size(); id++) {
                long ttl = declarations.get(id).ttlMillis();
                switch (key.slot(id)) {
                    case ValueSlot value -> value.content(id, ttl, cells);
                    case MapSlot map -> map.content(id, ttl, cells);
                    case null, default -> { }
                }
            }
            if (cells.getCellsCount() > 0) {
                contents.add(cells.build());
            }
        }
        return contents;
    }

    /** A handle on value cell {@code id}, as its step has one: for tools that look into cells (a test harness). */
    public ValueCell valueCell(int id) {
        return new ValueCellHandle(this, id);
    }

    /** A handle on map cell {@code id}, as its step has one. */
    public MapCell mapCell(int id) {
        return new MapCellHandle(this, id);
    }

    /** Processing time now: what a write stamps and a TTL is measured against. */
    long now() {
        return clock.millis();
    }

    /** @throws IllegalStateException naming the cell when no record is being handled */
    ResidentKey current(CellDeclarations.Declared cell) {
        ResidentKey key = current;
        if (key == null) {
            throw new IllegalStateException(cell.describe() + " is used outside the handling of a record: cells are "
                    + "the current record's key's, so a step reads and writes them only in process(), for a record "
                    + "of a keyed stream");
        }
        return key;
    }

    Bytes entryProbe(byte[] entryKey) {
        return entryProbe.probe(entryKey);
    }

    /** {@code key} changed since the last barrier. */
    void changed(ResidentKey key) {
        key.dirty = true;
        if (!key.listed) {
            key.listed = true;
            changed.add(key);
        }
    }

    /** The key of the record being handled, for messages; null between records. */
    public String currentKey() {
        return current == null ? null : current.key.toString();
    }

    /** How messages name {@code key}: its text in quotes, or its bytes in hex. */
    public static String describe(byte[] key) {
        return Bytes.describe(key);
    }
}
