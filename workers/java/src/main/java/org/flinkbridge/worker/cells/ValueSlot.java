package org.flinkbridge.worker.cells;

import com.google.protobuf.UnsafeByteOperations;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;

/** A value cell of one key: its value, when it was written, and whether it changed since the last barrier. */
final class ValueSlot {

    private byte[] value;
    private long writtenAt;
    private boolean changed;

    /** The value, or null: none, or gone at {@code now}. */
    byte[] get(long ttl, long now) {
        return value == null || CellTtl.expired(writtenAt, ttl, now) ? null : value;
    }

    void set(byte[] value, long now) {
        this.value = value;
        this.writtenAt = now;
        this.changed = true;
    }

    /** @return whether it changed (a cell that held nothing and had no change stays as it was) */
    boolean clear() {
        if (value == null && !changed) {
            return false;
        }
        value = null;
        changed = true;
        return true;
    }

    /** What a LOAD gives: not a change. */
    void load(byte[] value, long writtenAt) {
        this.value = value;
        this.writtenAt = writtenAt;
    }

    /** Its write, if it changed, into {@code writes}; clean afterwards. */
    void takeWrite(int cell, long ttl, KeyCells.Builder writes) {
        if (!changed) {
            return;
        }
        changed = false;
        CellWrite.Builder write = writes.addWritesBuilder().setCell(cell);
        if (value == null) {
            write.setOp(CellOp.CELL_OP_CLEAR);
        } else {
            write.setOp(CellOp.CELL_OP_SET)
                    .setValue(UnsafeByteOperations.unsafeWrap(CellTtl.onWire(value, writtenAt, ttl)));
        }
    }

    /** The bytes it takes as stored: its value behind its write time where the cell has a TTL; 0 when empty. */
    long storedBytes(long ttl) {
        return value == null ? 0 : value.length + (ttl > 0 ? CellTtl.PREFIX : 0);
    }

    /** Its content as a LOAD would carry it, if it holds a value (gone or not: the backend still has it). */
    void content(int cell, long ttl, KeyCells.Builder contents) {
        if (value != null) {
            contents.addCells(CellContent.newBuilder().setCell(cell)
                    .setValue(UnsafeByteOperations.unsafeWrap(CellTtl.onWire(value, writtenAt, ttl))));
        }
    }
}
