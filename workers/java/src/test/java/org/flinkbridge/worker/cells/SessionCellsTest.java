package org.flinkbridge.worker.cells;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.ValueCell;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cells of a session: declared by steps, loaded per key, read and written per record, written back per barrier. */
class SessionCellsTest {

    private final SessionClock clock = new SessionClock();
    private SessionCells cells;
    private ValueCell total;
    private MapCell seen;

    private static byte[] b(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static ByteString bs(String text) {
        return ByteString.copyFromUtf8(text);
    }

    private static String s(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    /** A value cell (id 0) of step "sum" and a map cell (id 1) of step "dedupe", the second step. */
    @BeforeEach
    void declare() {
        clock.stamp(1_000);
        cells = new SessionCells(clock);
        StepCells sum = new StepCells(cells, 0, "sum");
        total = sum.valueCell("total", null);
        sum.opened();
        StepCells dedupe = new StepCells(cells, 1, "dedupe");
        seen = dedupe.mapCell("seen", null);
        dedupe.opened();
        cells.declarations().seal();
    }

    private static KeyCells load(String key, CellContent... contents) {
        return KeyCells.newBuilder().setKey(bs(key)).addAllCells(List.of(contents)).build();
    }

    private static CellWrite write(int cell, CellOp op, String entryKey, String value) {
        CellWrite.Builder write = CellWrite.newBuilder().setCell(cell).setOp(op);
        if (entryKey != null) {
            write.setEntryKey(bs(entryKey));
        }
        if (value != null) {
            write.setValue(bs(value));
        }
        return write.build();
    }

    @Test
    void cellsAreNumberedInStepThenDeclarationOrder() {
        assertEquals(List.of(
                CellDeclaration.newBuilder().setStep("sum").setName("total").setKind(CellKind.CELL_KIND_VALUE).build(),
                CellDeclaration.newBuilder().setStep("dedupe").setName("seen").setKind(CellKind.CELL_KIND_MAP).build()),
                cells.declarations().toProto());
    }

    @Test
    void aLaterInstanceGetsTheSameIdsAndMayNotDeclareOthers() {
        StepCells again = new StepCells(cells, 1, "dedupe");
        MapCell seenAgain = again.mapCell("seen", null);
        cells.load(0, load("a", CellContent.newBuilder().setCell(1)
                .addEntries(CellEntry.newBuilder().setKey(bs("x")).setValue(bs("1"))).build()));
        cells.enter(b("a"));
        assertEquals("1", s(seenAgain.get(b("x"))));
        cells.leave();

        Exception other = assertThrows(IllegalStateException.class, () -> again.valueCell("extra", null));
        assertTrue(other.getMessage().startsWith("step 'dedupe': cell 'extra' is declared by this instance but not by "
                + "the step's first"), other.getMessage());
        Exception differently = assertThrows(IllegalStateException.class,
                () -> new StepCells(cells, 0, "sum").valueCell("total", Duration.ofSeconds(1)));
        assertTrue(differently.getMessage().contains("as a value with a TTL of 1000 ms by this instance but as a value"),
                differently.getMessage());
    }

    @Test
    void aNameDeclaredTwiceByAStepOrAfterItOpenedOrATtlUnderAMillisecondIsRefused() {
        SessionCells fresh = new SessionCells(clock);
        StepCells step = new StepCells(fresh, 0, "sum");
        step.valueCell("total", null);

        Exception twice = assertThrows(IllegalArgumentException.class, () -> step.mapCell("total", null));
        assertEquals("step 'sum' declares cell 'total' twice: a cell's name is unique within its step",
                twice.getMessage());
        Exception tiny = assertThrows(IllegalArgumentException.class,
                () -> step.valueCell("t", Duration.ofNanos(10)));
        assertTrue(tiny.getMessage().contains("a TTL is at least 1 ms"), tiny.getMessage());
        // Another step may use the name.
        new StepCells(fresh, 1, "other").valueCell("total", null);
        step.opened();
        assertThrows(IllegalStateException.class, () -> step.valueCell("late", null));
    }

    @Test
    void cellsAreOutOfReachOutsideARecordNamingTheStepAndCell() {
        Exception value = assertThrows(IllegalStateException.class, total::get);
        Exception map = assertThrows(IllegalStateException.class, () -> seen.put(b("k"), b("v")));

        assertTrue(value.getMessage().startsWith("step 'sum': cell 'total' is used outside the handling of a record"),
                value.getMessage());
        assertTrue(map.getMessage().startsWith("step 'dedupe': cell 'seen' is used outside"), map.getMessage());
    }

    @Test
    void aKeyIsResidentOnlyOnceLoaded() {
        assertFalse(cells.enter(b("a")));
        cells.load(5, load("a"));
        assertTrue(cells.enter(b("a")));
        assertNull(total.get());
        assertNull(seen.get(b("x")));
        assertEquals(List.of(), cells.takeWrites(), "loading is no change");
    }

    @Test
    void eachKeyHasItsOwnCellsAndABarrierWritesWhatChangedThenTheyAreClean() {
        cells.load(0, load("a", CellContent.newBuilder().setCell(0).setValue(bs("10")).build()));
        cells.load(1, load("b"));
        cells.load(2, load("c", CellContent.newBuilder().setCell(0).setValue(bs("7")).build()));

        cells.enter(b("a"));
        assertEquals("10", s(total.get()));
        total.set(b("11"));
        cells.leave();
        cells.enter(b("b"));
        assertNull(total.get());
        seen.put(b("x"), b("1"));
        seen.put(b("y"), b("2"));
        cells.leave();
        cells.enter(b("c"));
        assertEquals("7", s(total.get()), "read, never written: no write");
        cells.leave();

        assertEquals(List.of(
                KeyCells.newBuilder().setKey(bs("a")).addWrites(write(0, CellOp.CELL_OP_SET, null, "11"))
                        .setResidentBytes(2).build(),
                KeyCells.newBuilder().setKey(bs("b")).addWrites(write(1, CellOp.CELL_OP_PUT, "x", "1"))
                        .addWrites(write(1, CellOp.CELL_OP_PUT, "y", "2")).setResidentBytes(4).build()),
                cells.takeWrites());
        assertEquals(List.of(), cells.takeWrites());
        cells.enter(b("a"));
        assertEquals("11", s(total.get()), "what was written stays");
    }

    @Test
    void aValueClearedIsAClearAndOneNeverSetNeedsNone() {
        cells.load(0, load("a", CellContent.newBuilder().setCell(0).setValue(bs("10")).build()));
        cells.load(1, load("b"));
        cells.enter(b("a"));
        total.clear();
        assertNull(total.get());
        cells.enter(b("b"));
        total.clear();
        cells.leave();

        assertEquals(List.of(KeyCells.newBuilder().setKey(bs("a")).addWrites(write(0, CellOp.CELL_OP_CLEAR, null, null))
                .build()), cells.takeWrites());
    }

    @Test
    void mapEntriesAreFoundByContentAndGoInUnsignedByteOrder() {
        cells.load(0, load("a"));
        cells.enter(b("a"));
        seen.put(new byte[] {(byte) 0x80}, b("high"));
        seen.put(new byte[] {0x01}, b("low"));
        byte[] key = b("k");
        seen.put(key, b("v"));
        key[0] = 'z';  // the map copied the key

        assertEquals("v", s(seen.get(b("k"))));
        assertNull(seen.get(b("z")));
        List<String> order = new ArrayList<>();
        seen.forEach((k, v) -> order.add(s(v)));
        assertEquals(List.of("low", "v", "high"), order);
    }

    /** The writes of a map in the order to apply them: a clear first, then the final state of each changed entry. */
    @Test
    void aMapClearedThenPutIsAClearThenPutsAndRemovesAreRemoves() {
        cells.load(0, load("a", CellContent.newBuilder().setCell(1)
                .addEntries(CellEntry.newBuilder().setKey(bs("old")).setValue(bs("1")))
                .addEntries(CellEntry.newBuilder().setKey(bs("keep")).setValue(bs("2"))).build()));
        cells.load(1, load("b", CellContent.newBuilder().setCell(1)
                .addEntries(CellEntry.newBuilder().setKey(bs("gone")).setValue(bs("1")))
                .addEntries(CellEntry.newBuilder().setKey(bs("kept")).setValue(bs("2"))).build()));
        cells.enter(b("a"));
        seen.put(b("before"), b("x"));
        seen.clear();
        assertNull(seen.get(b("old")));
        seen.put(b("new"), b("3"));
        cells.enter(b("b"));
        seen.remove(b("gone"));
        seen.remove(b("never there"));
        seen.put(b("kept"), b("22"));
        cells.leave();

        assertEquals(List.of(
                KeyCells.newBuilder().setKey(bs("a")).addWrites(write(1, CellOp.CELL_OP_CLEAR, null, null))
                        .addWrites(write(1, CellOp.CELL_OP_PUT, "new", "3")).setResidentBytes(4).build(),
                KeyCells.newBuilder().setKey(bs("b")).addWrites(write(1, CellOp.CELL_OP_REMOVE, "gone", null))
                        .addWrites(write(1, CellOp.CELL_OP_PUT, "kept", "22")).setResidentBytes(6).build()),
                cells.takeWrites());
    }

    /** The first LOAD of an input replaces what the key held (changes included); a further one of it adds. */
    @Test
    void aFirstLoadReplacesTheKeyAndAFurtherLoadOfTheSameInputAdds() {
        cells.load(0, load("a", CellContent.newBuilder().setCell(0).setValue(bs("10")).build()));
        cells.enter(b("a"));
        total.set(b("11"));
        cells.leave();

        cells.load(7, load("a", CellContent.newBuilder().setCell(1)
                .addEntries(CellEntry.newBuilder().setKey(bs("x")).setValue(bs("1"))).build()));
        cells.load(7, load("a", CellContent.newBuilder().setCell(1)
                .addEntries(CellEntry.newBuilder().setKey(bs("y")).setValue(bs("2"))).build()));
        cells.enter(b("a"));

        assertNull(total.get(), "the first LOAD of input 7 left out the value");
        assertEquals("1", s(seen.get(b("x"))));
        assertEquals("2", s(seen.get(b("y"))));
        assertEquals(List.of(), cells.takeWrites(), "the change before the LOAD went with it");
    }

    @Test
    void aLoadThatDoesNotFitTheDeclarationsIsRefusedNamingKeyAndCell() {
        Exception range = assertThrows(IllegalArgumentException.class,
                () -> cells.load(0, load("a", CellContent.newBuilder().setCell(2).build())));
        Exception valueToMap = assertThrows(IllegalArgumentException.class,
                () -> cells.load(0, load("a", CellContent.newBuilder().setCell(1).setValue(bs("v")).build())));
        Exception entriesToValue = assertThrows(IllegalArgumentException.class,
                () -> cells.load(0, load("a", CellContent.newBuilder().setCell(0)
                        .addEntries(CellEntry.newBuilder().setKey(bs("x"))).build())));

        assertEquals("a LOAD of key 'a' names cell 2, but the session's steps declare 2 cells", range.getMessage());
        assertEquals("a LOAD of key 'a' gives a value to step 'dedupe': cell 'seen', a map", valueToMap.getMessage());
        assertEquals("a LOAD of key 'a' gives map entries to step 'sum': cell 'total', a value",
                entriesToValue.getMessage());
    }

    /**
     * {@code resident_bytes}: every value, entry key and entry value the key's cells hold after the writes, loaded
     * or written, replaced entries counted once, removed and cleared ones not at all.
     */
    @Test
    void everyKeysWritesCarryTheBytesItsCellsTakeAfterThem() {
        cells.load(0, load("a", CellContent.newBuilder().setCell(0).setValue(bs("12345")).build(),
                CellContent.newBuilder().setCell(1)
                        .addEntries(CellEntry.newBuilder().setKey(bs("k1")).setValue(bs("abc")))
                        .addEntries(CellEntry.newBuilder().setKey(bs("k2")).setValue(bs("de"))).build()));
        assertEquals(5 + 2 + 3 + 2 + 2, cells.residentBytes(b("a")), "as loaded");
        cells.load(1, load("b"));
        cells.enter(b("a"));
        total.set(b("1"));               // value 5 -> 1
        seen.put(b("k1"), b("abcdefg")); // entry value 3 -> 7
        seen.remove(b("k2"));            // -4
        seen.put(b("k3"), b(""));        // +2
        cells.enter(b("b"));
        seen.put(b("only"), b("x"));
        seen.clear();
        cells.leave();

        List<KeyCells> writes = cells.takeWrites();
        assertEquals(List.of("a", "b"), writes.stream().map(w -> w.getKey().toStringUtf8()).toList());
        assertEquals(1 + 2 + 7 + 2, writes.get(0).getResidentBytes());
        assertEquals(0, writes.get(1).getResidentBytes(), "a map cleared holds nothing");
        assertEquals(12, cells.residentBytes(b("a")));

        cells.enter(b("a"));
        total.clear();
        cells.leave();
        assertEquals(2 + 7 + 2, cells.takeWrites().getFirst().getResidentBytes());
    }

    /** A barrier's eviction drops a key's cells: not resident, so its next record needs a LOAD, which starts afresh. */
    @Test
    void anEvictedKeyIsNoLongerResidentAndALoadBringsItBack() {
        cells.load(0, load("a", CellContent.newBuilder().setCell(0).setValue(bs("10")).build()));
        cells.load(1, load("b"));
        cells.enter(b("a"));
        total.set(b("11"));
        cells.leave();
        assertEquals(1, cells.takeWrites().size());

        assertTrue(cells.evict(b("a")));
        assertFalse(cells.evict(b("a")), "no longer resident");
        assertFalse(cells.evict(b("never")), "a key not resident is ignored");
        assertEquals(1, cells.residentKeys());
        assertFalse(cells.enter(b("a")), "the key last entered was evicted too");
        assertTrue(cells.enter(b("b")));
        cells.leave();
        assertEquals(-1, cells.residentBytes(b("a")));

        cells.load(2, load("a", CellContent.newBuilder().setCell(1)
                .addEntries(CellEntry.newBuilder().setKey(bs("x")).setValue(bs("1"))).build()));
        assertTrue(cells.enter(b("a")));
        assertNull(total.get(), "what the LOAD carried, nothing of before");
        assertEquals("1", s(seen.get(b("x"))));
        cells.leave();
        assertEquals(List.of(), cells.takeWrites());
    }

    /** A key changed after the writes were taken (the bridge evicts only untouched keys) leaves no writes behind. */
    @Test
    void anEvictedKeyThatChangedAnywayLeavesNoWrites() {
        cells.load(0, load("a"));
        cells.enter(b("a"));
        total.set(b("1"));
        cells.leave();

        assertTrue(cells.evict(b("a")));
        assertEquals(List.of(), cells.takeWrites());
    }

    @Test
    void keysAreNamedAsTextOrHex() {
        assertEquals("'user-1'", SessionCells.describe(b("user-1")));
        assertEquals("0xff00", SessionCells.describe(new byte[] {(byte) 0xff, 0}));
        assertTrue(SessionCells.describe(new byte[300]).endsWith("... (300 bytes)"));
    }
}
