package org.flinkbridge.worker.cells;

import org.flinkbridge.worker.sdk.MapCell;

import java.util.Objects;
import java.util.function.BiConsumer;

/** A step's map cell: reaches the slot of the current record's key. */
final class MapCellHandle implements MapCell {

    private final SessionCells cells;
    private final int id;
    private final CellDeclarations.Declared cell;

    MapCellHandle(SessionCells cells, int id) {
        this.cells = cells;
        this.id = id;
        this.cell = cells.declarations().get(id);
    }

    @Override
    public byte[] get(byte[] key) {
        Objects.requireNonNull(key, "key");
        Object slot = cells.current(cell).slot(id);
        return slot == null ? null : ((MapSlot) slot).get(cells.entryProbe(key), cell.ttlMillis(), cells.now());
    }

    @Override
    public void put(byte[] key, byte[] value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, () -> cell.describe() + ": put(key, null); remove(key) removes an entry");
        ResidentKey resident = cells.current(cell);
        resident.map(id).put(cells.entryProbe(key), value, cells.now());
        cells.changed(resident);
    }

    @Override
    public void remove(byte[] key) {
        Objects.requireNonNull(key, "key");
        ResidentKey resident = cells.current(cell);
        if (resident.slot(id) instanceof MapSlot slot && slot.remove(cells.entryProbe(key))) {
            cells.changed(resident);
        }
    }

    @Override
    public void clear() {
        ResidentKey resident = cells.current(cell);
        if (resident.slot(id) instanceof MapSlot slot && slot.clear()) {
            cells.changed(resident);
        }
    }

    @Override
    public void forEach(BiConsumer<byte[], byte[]> action) {
        Objects.requireNonNull(action, "action");
        if (cells.current(cell).slot(id) instanceof MapSlot slot) {
            slot.forEach(cell.ttlMillis(), cells.now(), action);
        }
    }

    @Override
    public String toString() {
        return cell.describe();
    }
}
