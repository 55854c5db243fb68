package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.State;
import org.apache.flink.api.common.state.StateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeutils.base.StringSerializer;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.transport.grpc.CellFrames;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A session's cells as Flink keyed state under the record's key: a {@code ValueState<byte[]>} per value cell and a
 * {@code MapState} per map cell, with Flink's TTL where the cell has one (docs/protocol.md, "Cells"). Read to load a
 * key into the worker, written with the worker's changes at a barrier: always on the task thread, with the key set
 * on the backend explicitly, since the keyed operator's current record may be another's.
 *
 * <p>A map cell's entry keys are bytes, kept as ISO-8859-1 strings (one char per byte, so both ways are exact):
 * Flink's heap backend keys a map state's entries by {@code equals}, which a {@code byte[]} does not have.
 *
 * <p>Which of a key's map cells hold entries is kept beside them, in one more {@code ValueState} per key
 * ({@value #MAP_MARKS}: a bit per cell, bit {@code i % 8} of byte {@code i / 8} for cell {@code i}, set by a put,
 * cleared by a clear; a remove leaves it set). Reading a map means a RocksDB iterator seek, which visits every level
 * of the backend whether the key has entries or not, and a key loaded for the first time has none: without the marks
 * a build of 8,000,000 keys spent its time in those seeks. A mark is a point lookup, which RocksDB's bloom filters
 * answer for an absent key without reading data blocks. A job restored from a checkpoint taken before the marks
 * ({@code marksMaps} false, {@link CheckpointEntries}) has map entries without marks: it reads every map cell, as
 * before, and writes no marks, so that its later checkpoints are read the same way.
 */
final class CellStates implements SessionExchange.Cells {

    private final KeyedStateBackend<Object> backend;
    private final String sessionName;
    private final List<CellDeclaration> declarations;
    private final List<State> states = new ArrayList<>();
    /** The marks of the keys' map cells; null where the session has no map cell or keeps no marks. */
    private final ValueState<byte[]> mapMarks;
    /** Which cells are maps, as marks. */
    private final byte[] mapCells;

    /** The name of the marks' state: not a cell's ({@code "cell STEP/NAME"}). */
    static final String MAP_MARKS = "cells: maps with entries";

    /**
     * Declares the cells' states on {@code backend}, which must give synchronous access (not ForSt's async one).
     *
     * @param marksMaps whether the keys' map cells are marked ({@link #MAP_MARKS}); false for a job whose restored
     *                  checkpoint holds map entries without marks
     */
    @SuppressWarnings("unchecked")
    CellStates(KeyedStateBackend<?> backend, String sessionName, List<CellDeclaration> declarations,
               boolean marksMaps) throws IOException {
        this.backend = (KeyedStateBackend<Object>) backend;
        this.sessionName = sessionName;
        this.declarations = List.copyOf(declarations);
        this.mapCells = mapCells(declarations);
        try {
            for (CellDeclaration cell : declarations) {
                states.add(this.backend.getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                        withTtl(descriptor(cell), cell.getTtlMs())));
            }
            List<CellDeclaration> maps = declarations.stream()
                    .filter(cell -> cell.getKind() == CellKind.CELL_KIND_MAP).toList();
            mapMarks = marksMaps && !maps.isEmpty()
                    ? this.backend.getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                            withTtl(new ValueStateDescriptor<>(MAP_MARKS, BytePrimitiveArraySerializer.INSTANCE),
                                    marksTtlMs(maps)))
                    : null;
        } catch (Exception e) {
            throw new IOException(sessionName + ": cannot declare its cells in Flink's keyed state: " + e, e);
        }
    }

    private static StateDescriptor<?, ?> descriptor(CellDeclaration cell) {
        String name = "cell " + cell.getStep() + "/" + cell.getName();
        return switch (cell.getKind()) {
            case CELL_KIND_VALUE -> new ValueStateDescriptor<>(name, BytePrimitiveArraySerializer.INSTANCE);
            case CELL_KIND_MAP -> new MapStateDescriptor<>(name, StringSerializer.INSTANCE,
                    BytePrimitiveArraySerializer.INSTANCE);
            default -> throw new IllegalArgumentException("cell " + cell.getStep() + "/" + cell.getName()
                    + " has no kind the bridge knows: " + cell.getKind());
        };
    }

    /**
     * The marks outlive every entry they mark: rewritten with every put, they expire after the longest TTL of the map
     * cells, and never where one of them has none (0).
     */
    private static long marksTtlMs(List<CellDeclaration> maps) {
        return maps.stream().allMatch(cell -> cell.getTtlMs() > 0)
                ? maps.stream().mapToLong(CellDeclaration::getTtlMs).max().orElseThrow()
                : 0;
    }

    private static <D extends StateDescriptor<?, ?>> D withTtl(D descriptor, long ttlMs) {
        if (ttlMs > 0) {
            descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(ttlMs))
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build());
        }
        return descriptor;
    }

    @Override
    public boolean declared() {
        return !states.isEmpty();
    }

    @Override
    @SuppressWarnings("unchecked")
    public List<KeyCells> load(String key, byte[] keyBytes, int maxBytes) throws IOException {
        backend.setCurrentKey(key);
        KeyCells.Builder whole = KeyCells.newBuilder().setKey(ByteString.copyFrom(keyBytes));
        try {
            byte[] marks = mapMarks == null ? null : mapMarks.value();
            for (int cell = 0; cell < states.size(); cell++) {
                if (states.get(cell) instanceof ValueState<?> valueState) {
                    byte[] value = (byte[]) valueState.value();
                    if (value != null) {
                        whole.addCells(CellContent.newBuilder().setCell(cell).setValue(ByteString.copyFrom(value)));
                    }
                    continue;
                }
                if (mapMarks != null && !marked(marks, cell)) {
                    continue;
                }
                CellContent.Builder map = CellContent.newBuilder().setCell(cell);
                for (Map.Entry<String, byte[]> entry : ((MapState<String, byte[]>) states.get(cell)).entries()) {
                    map.addEntries(CellEntry.newBuilder()
                            .setKey(ByteString.copyFrom(entry.getKey(), StandardCharsets.ISO_8859_1))
                            .setValue(ByteString.copyFrom(entry.getValue())));
                }
                if (map.getEntriesCount() > 0) {
                    whole.addCells(map);
                }
            }
        } catch (Exception e) {
            throw new IOException(sessionName + ": cannot read the cells of key '" + key + "': " + e, e);
        }
        try {
            return CellFrames.cut(whole.build(), maxBytes);
        } catch (CellFrames.TooLarge e) {
            throw new IOException(sessionName + ": cell " + describe(e.cell()) + " of key '" + key + "' holds a value"
                    + " larger than a LOAD frame carries (" + maxBytes + " bytes; over shm a frame is at most half the"
                    + " to-worker ring: raise flink-bridge.shm.ring-capacity): " + e.getMessage(), e);
        }
    }

    @Override
    @SuppressWarnings("unchecked")
    public void write(String key, KeyCells writes) throws IOException {
        backend.setCurrentKey(key);
        try {
            MarkChanges marks = null; // how these writes change the key's marks, once one puts into or clears a map
            for (CellWrite write : writes.getWritesList()) {
                int cell = write.getCell();
                if (cell >= states.size()) {
                    throw new SessionExchange.WorkerFailure(sessionName + ": the worker wrote cell " + cell
                            + " of key '" + key + "', but the session declared " + states.size() + " cells (a"
                            + " protocol violation)");
                }
                State state = states.get(cell);
                switch (write.getOp()) {
                    case CELL_OP_SET -> value(state, cell, write).update(write.getValue().toByteArray());
                    case CELL_OP_CLEAR -> {
                        state.clear();
                        if (mapMarks != null && state instanceof MapState<?, ?>) {
                            marks = marks == null ? new MarkChanges(mapCells.length) : marks;
                            marks.cleared(cell);
                        }
                    }
                    case CELL_OP_PUT -> {
                        map(state, cell, write).put(mapKey(write), write.getValue().toByteArray());
                        if (mapMarks != null) {
                            marks = marks == null ? new MarkChanges(mapCells.length) : marks;
                            marks.put(cell);
                        }
                    }
                    case CELL_OP_REMOVE -> map(state, cell, write).remove(mapKey(write));
                    default -> throw new SessionExchange.WorkerFailure(sessionName + ": the worker wrote cell "
                            + describe(cell) + " with an operation the bridge does not know: " + write.getOp());
                }
            }
            if (marks != null) {
                writeMarks(marks);
            }
        } catch (SessionExchange.WorkerFailure e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(sessionName + ": cannot write the cells of key '" + key + "': " + e, e);
        }
    }

    private static boolean marked(byte[] marks, int cell) {
        return marks != null && cell / Byte.SIZE < marks.length
                && (marks[cell / Byte.SIZE] & MarkChanges.bit(cell)) != 0;
    }

    /** The marks of every map cell of the session (a bit per cell, as {@link #MAP_MARKS}). */
    private static byte[] mapCells(List<CellDeclaration> declarations) {
        byte[] cells = new byte[(declarations.size() + Byte.SIZE - 1) / Byte.SIZE];
        for (int cell = 0; cell < declarations.size(); cell++) {
            if (declarations.get(cell).getKind() == CellKind.CELL_KIND_MAP) {
                cells[cell / Byte.SIZE] |= MarkChanges.bit(cell);
            }
        }
        return cells;
    }

    /**
     * Stores the key's marks as {@code changes} leave them: rewritten even when unchanged, since a put renews the
     * marks' TTL with its entry's; read first only where the writes left some map cell's mark undecided (for a
     * session with one map cell, never: a barrier writes back every changed key, and a read per key is what the
     * build of 8,000,000 keys spent most of its time in).
     */
    private void writeMarks(MarkChanges changes) throws IOException {
        byte[] marks = changes.applyTo(changes.decides(mapCells) ? null : mapMarks.value());
        for (byte bits : marks) {
            if (bits != 0) {
                mapMarks.update(marks);
                return;
            }
        }
        mapMarks.clear();
    }

    /** How one key's writes change its marks: the map cells they leave with entries (put) and without (cleared). */
    private static final class MarkChanges {
        private final byte[] put;
        private final byte[] cleared;

        MarkChanges(int bytes) {
            put = new byte[bytes];
            cleared = new byte[bytes];
        }

        void put(int cell) {
            put[cell / Byte.SIZE] |= bit(cell);
            cleared[cell / Byte.SIZE] &= (byte) ~bit(cell);
        }

        void cleared(int cell) {
            cleared[cell / Byte.SIZE] |= bit(cell);
            put[cell / Byte.SIZE] &= (byte) ~bit(cell);
        }

        /** Whether these changes set or clear the mark of every cell in {@code cells}. */
        boolean decides(byte[] cells) {
            for (int i = 0; i < cells.length; i++) {
                if ((cells[i] & ~(put[i] | cleared[i])) != 0) {
                    return false;
                }
            }
            return true;
        }

        /** The marks {@code stored} (null: none) become. */
        byte[] applyTo(byte[] stored) {
            byte[] marks = put.clone();
            for (int i = 0; stored != null && i < Math.min(stored.length, marks.length); i++) {
                marks[i] |= (byte) (stored[i] & ~cleared[i]);
            }
            return marks;
        }

        private static byte bit(int cell) {
            return (byte) (1 << cell % Byte.SIZE);
        }
    }

    @SuppressWarnings("unchecked")
    private ValueState<byte[]> value(State state, int cell, CellWrite write) {
        if (state instanceof ValueState<?> value) {
            return (ValueState<byte[]>) value;
        }
        throw wrongKind(cell, write);
    }

    @SuppressWarnings("unchecked")
    private MapState<String, byte[]> map(State state, int cell, CellWrite write) {
        if (state instanceof MapState<?, ?> map) {
            return (MapState<String, byte[]>) map;
        }
        throw wrongKind(cell, write);
    }

    private SessionExchange.WorkerFailure wrongKind(int cell, CellWrite write) {
        return new SessionExchange.WorkerFailure(sessionName + ": the worker sent " + write.getOp() + " for cell "
                + describe(cell) + ", a " + declarations.get(cell).getKind() + " (a protocol violation)");
    }

    private static String mapKey(CellWrite write) {
        return write.getEntryKey().toString(StandardCharsets.ISO_8859_1);
    }

    private String describe(int cell) {
        return declarations.get(cell).getStep() + "/" + declarations.get(cell).getName();
    }
}
