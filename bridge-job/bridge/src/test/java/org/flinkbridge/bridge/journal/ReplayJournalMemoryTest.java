package org.flinkbridge.bridge.journal;

import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The journal holds memory for what it holds, not for its bound: nothing until the first input, doubling as inputs
 * come, never past the bound, and none once it overflows (nothing in it can be replayed then), until inputs after
 * the next barrier need it again; what it holds replays whole across its growth.
 */
class ReplayJournalMemoryTest {

    private static final long BOUND = 8L << 20;

    @Test
    void memoryFollowsTheInputsUpToTheBoundAndIsGivenBackOnOverflow() throws IOException {
        try (ReplayJournal journal = new ReplayJournal(BOUND, 16)) {
            assertEquals(0, journal.allocatedBytes(), "memory before any input");

            append(journal, 0, 10, 100);
            assertEquals(64 * 1024, journal.allocatedBytes(), "10 small inputs");
            append(journal, 10, 1_000, 100);
            long grown = journal.allocatedBytes();
            assertTrue(grown > 64 * 1024 && grown < BOUND, "1,010 small inputs in " + grown + " bytes");
            assertEquals(1_010, replayed(journal).size(), "every input replays across the log's growth");

            append(journal, 1_010, 100, 100_000);
            assertTrue(journal.overflowed());
            assertEquals(0, journal.allocatedBytes(), "memory held by a journal that cannot be replayed");

            journal.truncate();
            assertFalse(journal.overflowed());
            append(journal, 2_000, 3, 100);
            assertEquals(64 * 1024, journal.allocatedBytes(), "memory after the next barrier");
            assertEquals(List.of(2_000L, 2_001L, 2_002L), replayed(journal));
        }
    }

    /** Records {@code first} .. {@code first + count - 1} of {@code payloadBytes} each, each answered with itself. */
    private static void append(ReplayJournal journal, long first, int count, int payloadBytes) {
        for (long sequence = first; sequence < first + count; sequence++) {
            BridgeRecord record = new BridgeRecord(new byte[payloadBytes], Map.of("n", Long.toString(sequence)),
                    sequence);
            journal.appendRecord(sequence, KeyGroups.NONE, record);
            journal.outputReceived(sequence, record);
            journal.ended(sequence);
        }
    }

    private static List<Long> replayed(ReplayJournal journal) throws IOException {
        List<Long> sequences = new ArrayList<>();
        journal.replay(new ReplayJournal.Replayer() {
            @Override
            public void record(long sequence, int keyGroup, BridgeRecord record) {
                assertEquals(Long.toString(sequence), record.headers.get("n"));
                sequences.add(sequence);
            }

            @Override
            public void watermark(long sequence, long timestamp) {}

            @Override
            public void barrier(long sequence, long checkpointId) {}

            @Override
            public void clock(long sequence, long processingTimeMillis) {}

            @Override
            public void endOfInput(long sequence) {}
        }, false);
        return sequences;
    }
}
