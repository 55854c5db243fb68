package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.transport.grpc.StatePieces;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointEntriesTest {

    /** A held output whose header is a megabyte: writeUTF's 64 KiB limit failed every later checkpoint. */
    @Test
    void aHeldOutputWithAHeaderOfAMegabyteRoundTrips() throws IOException {
        String huge = "h".repeat(1 << 20);
        BridgeRecord output = new BridgeRecord(new byte[] {1, 2, 3}, Map.of(huge, huge, "k", "v"), 42);

        List<BridgeRecord> restored = CheckpointEntries.select(List.of(CheckpointEntries.output(0, output)), 0, 1, 128)
                .outputs();

        assertEquals(1, restored.size());
        assertEquals(output.headers, restored.getFirst().headers);
        assertArrayEquals(output.payload, restored.getFirst().payload);
        assertEquals(42, restored.getFirst().timestamp);
    }

    @Test
    void aCorruptLengthIsAnIoErrorNotAHugeAllocation() {
        byte[] entry = CheckpointEntries.output(0, new BridgeRecord(new byte[] {7}, Map.of("k", "v"), 1));
        byte[] corrupt = Arrays.copyOf(entry, entry.length);
        // The header key's length (after version, kind, subtask, timestamp and header count) claims 2 GB.
        int keyLength = 1 + 1 + 4 + 8 + 4;
        corrupt[keyLength] = 0x7f;

        IOException error = assertThrows(IOException.class, () -> CheckpointEntries.select(List.of(corrupt), 0, 1, 128));
        assertTrue(error.getMessage().startsWith("a string of 2130706433 bytes with "), error.getMessage());
    }

    /** A large state comes from the worker in pieces: all of one old subtask's pieces go to one new subtask. */
    @Test
    void theStatePiecesOfOneOldSubtaskAreRestoredTogetherInOrderAndTwoOldSubtasksAreNotMerged() throws IOException {
        List<KeyGroupState> pieces = StatePieces.cut(null, ByteString.copyFrom(new byte[9 << 20]));
        List<byte[]> entries = new ArrayList<>();
        pieces.forEach(piece -> entries.add(CheckpointEntries.workerState(1, piece)));

        assertEquals(pieces, CheckpointEntries.select(entries, 1, 2, 128).workerStates());
        assertEquals(List.of(), CheckpointEntries.select(entries, 0, 2, 128).workerStates());

        entries.add(CheckpointEntries.workerState(0, pieces.getLast()));
        IOException merged = assertThrows(IOException.class, () -> CheckpointEntries.select(entries, 0, 1, 128));
        assertTrue(merged.getMessage().startsWith("the segment is not keyed, so the worker state of old subtasks 1 "
                + "and 0 cannot be merged"), merged.getMessage());
    }

    /**
     * A restore takes the keys' map cells as marked (CellStates) only where every old subtask wrote so: a checkpoint
     * taken before the marks has map entries without them.
     */
    @Test
    void mapCellsAreMarkedOnlyWhereEveryOldSubtaskWroteThatTheyAre() throws IOException {
        BridgeRecord held = new BridgeRecord(new byte[] {1}, Map.of(), 1);

        assertTrue(CheckpointEntries.select(List.of(CheckpointEntries.mapMarks(0, true),
                CheckpointEntries.mapMarks(1, true)), 0, 1, 128).mapsMarked());
        assertFalse(CheckpointEntries.select(List.of(CheckpointEntries.mapMarks(0, true),
                CheckpointEntries.mapMarks(1, false)), 1, 2, 128).mapsMarked());
        assertFalse(CheckpointEntries.select(List.of(CheckpointEntries.output(0, held)), 0, 1, 128).mapsMarked());
        assertFalse(CheckpointEntries.select(List.of(), 0, 1, 128).mapsMarked());
    }
}
