package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.util.Collector;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * A session's cells in Flink's keyed state (the heap backend of an operator test harness): a map cell is read only
 * where its key's marks say it holds entries, the marks follow puts and clears and expire with the entries, and a
 * job restored from a checkpoint taken before the marks reads every map cell and writes no marks.
 */
class CellStatesTest {

    private static final int MAX_FRAME = 1 << 20;
    private static final List<CellDeclaration> CELLS = List.of(
            cell("total", CellKind.CELL_KIND_VALUE, 0),
            cell("seen", CellKind.CELL_KIND_MAP, 0),
            cell("recent", CellKind.CELL_KIND_MAP, 1_000));

    private KeyedOneInputStreamOperatorTestHarness<String, String, String> harness;
    private KeyedStateBackend<?> backend;

    @BeforeEach
    void openBackend() throws Exception {
        harness = new KeyedOneInputStreamOperatorTestHarness<>(new KeyedProcessOperator<>(new Unused()),
                value -> value, Types.STRING);
        harness.open();
        backend = harness.getOperator().getKeyedStateBackend();
    }

    @AfterEach
    void closeBackend() throws Exception {
        harness.close();
    }

    @Test
    void aMapCellIsReadWhereItsKeyIsMarkedAndTheMarksFollowPutsAndClears() throws Exception {
        CellStates cells = new CellStates(backend, "session", CELLS, true);

        cells.write("a", writes("a", put(1, "x", "1"), put(2, "y", "2"), set(0, "7")));
        assertEquals(Map.of(0, Map.of("", "7"), 1, Map.of("x", "1"), 2, Map.of("y", "2")), loaded(cells, "a"));
        assertEquals(Map.of(), loaded(cells, "never written"));
        assertEquals("00000110", marks("a"));

        cells.write("a", writes("a", clear(1)));
        assertEquals(Map.of(0, Map.of("", "7"), 2, Map.of("y", "2")), loaded(cells, "a"));
        assertEquals("00000100", marks("a"));

        // A remove leaves the mark: the map is read and found empty.
        cells.write("a", writes("a", remove(2, "y")));
        assertEquals(Map.of(0, Map.of("", "7")), loaded(cells, "a"));
        assertEquals("00000100", marks("a"));

        // One barrier's writes count in their order: here the last clears the map, and no map keeps a mark.
        cells.write("a", writes("a", clear(2), put(2, "z", "3"), clear(2)));
        assertNull(marks("a"));
        cells.write("a", writes("a", clear(1), put(1, "w", "4")));
        assertEquals(Map.of(0, Map.of("", "7"), 1, Map.of("w", "4")), loaded(cells, "a"));
        assertEquals("00000010", marks("a"));
    }

    /** With one map cell a put or a clear decides the marks, which are written without being read first. */
    @Test
    void theMarksOfASessionWithOneMapFollowItsPutsAndClears() throws Exception {
        CellStates cells = new CellStates(backend, "session", List.of(cell("counts", CellKind.CELL_KIND_MAP, 0),
                cell("total", CellKind.CELL_KIND_VALUE, 0)), true);

        cells.write("a", writes("a", put(0, "x", "1")));
        cells.write("a", writes("a", set(1, "2")));
        assertEquals("00000001", marks("a"));
        cells.write("a", writes("a", put(0, "y", "2")));
        assertEquals(Map.of(0, Map.of("x", "1", "y", "2"), 1, Map.of("", "2")), loaded(cells, "a"));
        cells.write("a", writes("a", clear(0)));
        assertNull(marks("a"));
        assertEquals(Map.of(1, Map.of("", "2")), loaded(cells, "a"));
    }

    @Test
    void theMarksOfMapsThatAllHaveATtlExpireWithTheirEntries() throws Exception {
        List<CellDeclaration> expiring = List.of(cell("recent", CellKind.CELL_KIND_MAP, 1_000),
                cell("latest", CellKind.CELL_KIND_MAP, 3_000));
        CellStates cells = new CellStates(backend, "session", expiring, true);
        harness.setStateTtlProcessingTime(0);

        cells.write("a", writes("a", put(0, "x", "1"), put(1, "y", "2")));
        harness.setStateTtlProcessingTime(2_000);
        assertEquals(Map.of(1, Map.of("y", "2")), loaded(cells, "a"));
        assertEquals("00000011", marks("a"));

        // Rewritten with every put, the marks live as long as the longest-lived entry.
        cells.write("a", writes("a", put(0, "x", "3")));
        harness.setStateTtlProcessingTime(4_000);
        assertEquals(Map.of(), loaded(cells, "a"));
        assertEquals("00000011", marks("a"));
        harness.setStateTtlProcessingTime(6_000);
        assertNull(marks("a"));
    }

    @Test
    void aJobRestoredFromMapsWithoutMarksReadsEveryMapAndWritesNoMarks() throws Exception {
        CellStates unmarked = new CellStates(backend, "session", CELLS, false);

        unmarked.write("a", writes("a", put(1, "x", "1")));

        assertEquals(Map.of(1, Map.of("x", "1")), loaded(unmarked, "a"));
        assertNull(marks("a"));
    }

    /** Each loaded cell's entries (a value cell's under the empty key), by cell. */
    private static Map<Integer, Map<String, String>> loaded(CellStates cells, String key) throws Exception {
        Map<Integer, Map<String, String>> loaded = new TreeMap<>();
        for (KeyCells message : cells.load(key, key.getBytes(StandardCharsets.UTF_8), MAX_FRAME)) {
            for (CellContent cell : message.getCellsList()) {
                Map<String, String> entries = loaded.computeIfAbsent(cell.getCell(), id -> new TreeMap<>());
                if (cell.hasValue()) {
                    entries.put("", cell.getValue().toStringUtf8());
                }
                cell.getEntriesList().forEach(entry ->
                        entries.put(entry.getKey().toStringUtf8(), entry.getValue().toStringUtf8()));
            }
        }
        return loaded;
    }

    /** The key's marks as the bits of their first byte, highest first; null where none are stored. */
    private String marks(String key) throws Exception {
        @SuppressWarnings("unchecked")
        KeyedStateBackend<Object> keyed = (KeyedStateBackend<Object>) backend;
        keyed.setCurrentKey(key);
        ValueState<byte[]> marks = keyed.getPartitionedState(VoidNamespace.INSTANCE,
                VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>(CellStates.MAP_MARKS, BytePrimitiveArraySerializer.INSTANCE));
        byte[] bits = marks.value();
        return bits == null ? null
                : String.format("%8s", Integer.toBinaryString(bits[0] & 0xff)).replace(' ', '0');
    }

    private static KeyCells writes(String key, CellWrite... writes) {
        return KeyCells.newBuilder().setKey(ByteString.copyFromUtf8(key)).addAllWrites(List.of(writes)).build();
    }

    private static CellWrite put(int cell, String entry, String value) {
        return CellWrite.newBuilder().setCell(cell).setOp(CellOp.CELL_OP_PUT)
                .setEntryKey(ByteString.copyFromUtf8(entry)).setValue(ByteString.copyFromUtf8(value)).build();
    }

    private static CellWrite remove(int cell, String entry) {
        return CellWrite.newBuilder().setCell(cell).setOp(CellOp.CELL_OP_REMOVE)
                .setEntryKey(ByteString.copyFromUtf8(entry)).build();
    }

    private static CellWrite set(int cell, String value) {
        return CellWrite.newBuilder().setCell(cell).setOp(CellOp.CELL_OP_SET).setValue(ByteString.copyFromUtf8(value))
                .build();
    }

    private static CellWrite clear(int cell) {
        return CellWrite.newBuilder().setCell(cell).setOp(CellOp.CELL_OP_CLEAR).build();
    }

    private static CellDeclaration cell(String name, CellKind kind, long ttlMs) {
        return CellDeclaration.newBuilder().setStep("step").setName(name).setKind(kind).setTtlMs(ttlMs).build();
    }

    /** The harness's operator: only its keyed state backend is used. */
    private static final class Unused extends KeyedProcessFunction<String, String, String> {
        @Override
        public void processElement(String value, Context ctx, Collector<String> out) {
            throw new UnsupportedOperationException("the test feeds the operator no record");
        }
    }
}
