package org.flinkbridge.worker.cells;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.ValueCell;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Cells with a TTL, on the session's clock (the bridge's CLOCK inputs): an expired value is never a step's. */
class CellTtlTest {

    private final SessionClock clock = new SessionClock();
    private SessionCells cells;
    private ValueCell last;
    private MapCell recent;

    private static byte[] b(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String s(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    /** The wire form of a value of a cell with a TTL: its write time (i64 LE), then the step's bytes. */
    private static ByteString wire(long writtenAt, String value) {
        return ByteString.copyFrom(ByteBuffer.allocate(8 + value.length()).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(writtenAt).put(b(value)).array());
    }

    @BeforeEach
    void declare() {
        cells = new SessionCells(clock);
        StepCells step = new StepCells(cells, 0, "step");
        last = step.valueCell("last", Duration.ofMillis(100));
        recent = step.mapCell("recent", Duration.ofMillis(100));
        step.opened();
        cells.declarations().seal();
    }

    /** At {@code millis}: loads key a with no cells, enters it, sets last to v and recent's entry k to e. */
    private void writeToKeyAAt(long millis) {
        clock.stamp(millis);
        cells.load(0, KeyCells.newBuilder().setKey(ByteString.copyFromUtf8("a")).build());
        cells.enter(b("a"));
        last.set(b("v"));
        recent.put(b("k"), b("e"));
    }

    @Test
    void theTtlIsDeclared() {
        assertEquals(List.of(100L, 100L), cells.declarations().toProto().stream().map(c -> c.getTtlMs()).toList());
    }

    @Test
    void aValueIsThereUntilItsWriteTimePlusTheTtlAndGoneFromThen() {
        writeToKeyAAt(1_000);

        clock.stamp(1_099);
        assertEquals("v", s(last.get()));
        assertEquals("e", s(recent.get(b("k"))));
        clock.stamp(1_100);
        assertNull(last.get());
        assertNull(recent.get(b("k")));
        List<String> handed = new ArrayList<>();
        recent.forEach((k, v) -> handed.add(s(v)));
        assertEquals(List.of(), handed);
    }

    @Test
    void whatIsWrittenBackCarriesItsWriteTimeBeforeTheStepsBytes() {
        writeToKeyAAt(5_000);
        clock.stamp(5_050);
        last.set(b("w"));
        cells.leave();

        KeyCells writes = cells.takeWrites().getFirst();
        assertEquals(CellOp.CELL_OP_SET, writes.getWrites(0).getOp());
        assertEquals(wire(5_050, "w"), writes.getWrites(0).getValue());
        assertEquals(CellOp.CELL_OP_PUT, writes.getWrites(1).getOp());
        assertEquals(wire(5_000, "e"), writes.getWrites(1).getValue());
    }

    /** In {@code resident_bytes} a value of a cell with a TTL counts as stored: behind its 8-byte write time. */
    @Test
    void residentBytesCountEachValueWithItsWriteTime() {
        clock.stamp(10_000);
        cells.load(0, KeyCells.newBuilder().setKey(ByteString.copyFromUtf8("a"))
                .addCells(CellContent.newBuilder().setCell(1)
                        .addEntries(CellEntry.newBuilder().setKey(ByteString.copyFromUtf8("old"))
                                .setValue(wire(9_000, "expired"))))
                .build());
        assertEquals(3 + 8 + 7, cells.residentBytes(b("a")), "as the LOAD carried it");
        cells.enter(b("a"));
        last.set(b("vv"));
        recent.put(b("k"), b("e"));
        cells.leave();

        KeyCells writes = cells.takeWrites().getFirst();
        // The expired entry is still held (and still in the backend until Flink's TTL drops it): it counts.
        assertEquals((8 + 2) + (3 + 8 + 7) + (1 + 8 + 1), writes.getResidentBytes());
    }

    /** A loaded value past its TTL is never handed to the step; one still alive is, without its write time. */
    @Test
    void aLoadedValuePastItsTtlIsNeverHandedToAStep() {
        clock.stamp(10_000);
        cells.load(3, KeyCells.newBuilder().setKey(ByteString.copyFromUtf8("a"))
                .addCells(CellContent.newBuilder().setCell(0).setValue(wire(9_900, "expired")))
                .addCells(CellContent.newBuilder().setCell(1)
                        .addEntries(CellEntry.newBuilder().setKey(ByteString.copyFromUtf8("old"))
                                .setValue(wire(9_000, "expired")))
                        .addEntries(CellEntry.newBuilder().setKey(ByteString.copyFromUtf8("new"))
                                .setValue(wire(9_950, "alive"))))
                .build());
        cells.enter(b("a"));

        assertNull(last.get());
        assertNull(recent.get(b("old")));
        assertEquals("alive", s(recent.get(b("new"))));
        List<String> handed = new ArrayList<>();
        recent.forEach((k, v) -> handed.add(s(k) + "=" + s(v)));
        assertEquals(List.of("new=alive"), handed);
        clock.stamp(10_050);
        assertNull(recent.get(b("new")));
    }

    @Test
    void aLoadedValueTooShortForItsWriteTimeIsRefused() {
        Exception refused = assertThrows(IllegalArgumentException.class, () -> cells.load(0,
                KeyCells.newBuilder().setKey(ByteString.copyFromUtf8("a"))
                        .addCells(CellContent.newBuilder().setCell(0).setValue(ByteString.copyFromUtf8("abc")))
                        .build()));
        assertTrue(refused.getMessage().contains("a value of 3 bytes: its values start with their 8-byte write time"),
                refused.getMessage());
    }

    @Test
    void expiryIsAtWriteTimePlusTtlAndNeverPastTheLongestTime() {
        assertFalse(CellTtl.expired(1_000, 100, 1_099));
        assertTrue(CellTtl.expired(1_000, 100, 1_100));
        assertFalse(CellTtl.expired(1_000, 0, Long.MAX_VALUE), "no TTL");
        assertFalse(CellTtl.expired(Long.MAX_VALUE - 10, 100, Long.MAX_VALUE), "past the longest time it never ends");
    }
}
