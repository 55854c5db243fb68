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
 */
final class CellStates implements SessionExchange.Cells {

    private final KeyedStateBackend<Object> backend;
    private final String sessionName;
    private final List<CellDeclaration> declarations;
    private final List<State> states = new ArrayList<>();

    /** Declares the cells' states on {@code backend}, which must give synchronous access (not ForSt's async one). */
    @SuppressWarnings("unchecked")
    CellStates(KeyedStateBackend<?> backend, String sessionName, List<CellDeclaration> declarations)
            throws IOException {
        this.backend = (KeyedStateBackend<Object>) backend;
        this.sessionName = sessionName;
        this.declarations = List.copyOf(declarations);
        try {
            for (CellDeclaration cell : declarations) {
                states.add(this.backend.getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                        descriptor(cell)));
            }
        } catch (Exception e) {
            throw new IOException(sessionName + ": cannot declare its cells in Flink's keyed state: " + e, e);
        }
    }

    private static StateDescriptor<?, ?> descriptor(CellDeclaration cell) {
        String name = "cell " + cell.getStep() + "/" + cell.getName();
        StateDescriptor<?, ?> descriptor = switch (cell.getKind()) {
            case CELL_KIND_VALUE -> new ValueStateDescriptor<>(name, BytePrimitiveArraySerializer.INSTANCE);
            case CELL_KIND_MAP -> new MapStateDescriptor<>(name, StringSerializer.INSTANCE,
                    BytePrimitiveArraySerializer.INSTANCE);
            default -> throw new IllegalArgumentException("cell " + cell.getStep() + "/" + cell.getName()
                    + " has no kind the bridge knows: " + cell.getKind());
        };
        if (cell.getTtlMs() > 0) {
            descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(cell.getTtlMs()))
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
            for (int cell = 0; cell < states.size(); cell++) {
                if (states.get(cell) instanceof ValueState<?> valueState) {
                    byte[] value = (byte[]) valueState.value();
                    if (value != null) {
                        whole.addCells(CellContent.newBuilder().setCell(cell).setValue(ByteString.copyFrom(value)));
                    }
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
                    case CELL_OP_CLEAR -> state.clear();
                    case CELL_OP_PUT -> map(state, cell, write).put(mapKey(write), write.getValue().toByteArray());
                    case CELL_OP_REMOVE -> map(state, cell, write).remove(mapKey(write));
                    default -> throw new SessionExchange.WorkerFailure(sessionName + ": the worker wrote cell "
                            + describe(cell) + " with an operation the bridge does not know: " + write.getOp());
                }
            }
        } catch (SessionExchange.WorkerFailure e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(sessionName + ": cannot write the cells of key '" + key + "': " + e, e);
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
