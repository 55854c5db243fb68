package org.flinkbridge.worker.cells;

import org.flinkbridge.worker.sdk.ValueCell;

import java.util.Objects;

/** A step's value cell: reaches the slot of the current record's key. */
final class ValueCellHandle implements ValueCell {

    private final SessionCells cells;
    private final int id;
    private final CellDeclarations.Declared cell;

    ValueCellHandle(SessionCells cells, int id) {
        this.cells = cells;
        this.id = id;
        this.cell = cells.declarations().get(id);
    }

    @Override
    public byte[] get() {
        Object slot = cells.current(cell).slot(id);
        return slot == null ? null : ((ValueSlot) slot).get(cell.ttlMillis(), cells.now());
    }

    @Override
    public void set(byte[] value) {
        Objects.requireNonNull(value, () -> cell.describe() + ": set(null); clear() empties a cell");
        ResidentKey key = cells.current(cell);
        key.value(id).set(value, cells.now());
        cells.changed(key);
    }

    @Override
    public void clear() {
        ResidentKey key = cells.current(cell);
        if (key.slot(id) instanceof ValueSlot slot && slot.clear()) {
            cells.changed(key);
        }
    }

    @Override
    public String toString() {
        return cell.describe();
    }
}
