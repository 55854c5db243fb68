package org.flinkbridge.bridge.journal;

import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.proto.data.TimerFiring;
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
 * the next barrier need it again; what it holds replays whole across its growth. Its memory counts every byte it
 * holds: a limit there lower than its own bound is its bound, and memory refused there makes it overflow.
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

    @Test
    void aMemoryThatRefusesPastItsBytesMakesTheJournalOverflowThereAndGetsAllItsBytesBack() throws IOException {
        Budget memory = new Budget(Long.MAX_VALUE, 256 * 1024);
        try (ReplayJournal journal = new ReplayJournal(BOUND, 16, memory)) {
            assertEquals(BOUND, journal.capacityBytes());
            assertFalse(journal.boundByMemory());

            append(journal, 0, 1_000, 100);
            assertEquals(256 * 1024, journal.allocatedBytes(), "1,000 small inputs");
            assertEquals(journal.allocatedBytes(), memory.reserved, "the memory counts what the log holds");
            assertFalse(journal.overflowed());

            append(journal, 1_000, 1_000, 100);
            assertTrue(journal.overflowed(), "the journal grew past what its memory gives");
            assertTrue(journal.refused());
            assertEquals(0, journal.allocatedBytes());
            assertEquals(0, memory.reserved, "bytes still counted after the overflow");

            journal.truncate();
            assertFalse(journal.refused());
            append(journal, 2_000, 3, 100);
            assertEquals(64 * 1024, memory.reserved, "memory counted after the next barrier");
            assertEquals(List.of(2_000L, 2_001L, 2_002L), replayed(journal));
        }
        assertEquals(0, memory.reserved, "bytes still counted after close");
    }

    @Test
    void aMemoryLimitBelowTheJournalsBoundIsItsBound() {
        Budget memory = new Budget(100_000, Long.MAX_VALUE);
        try (ReplayJournal journal = new ReplayJournal(BOUND, 16, memory)) {
            assertEquals(100_000, journal.capacityBytes());
            assertTrue(journal.boundByMemory());

            append(journal, 0, 500, 100);
            assertEquals(100_000, journal.allocatedBytes(), "the log grows to the limit, not past it");
            assertEquals(100_000, memory.reserved);
            append(journal, 500, 500, 100);
            assertTrue(journal.overflowed());
            assertFalse(journal.refused(), "the bound, not a refusal, made it overflow");
            assertEquals(0, memory.reserved);
        }
    }

    /** A memory that limits the journal to {@code limit} bytes and refuses reservations past {@code gives}. */
    private static final class Budget implements JournalMemory {
        private final long limit;
        private final long gives;
        long reserved;

        Budget(long limit, long gives) {
            this.limit = limit;
            this.gives = gives;
        }

        @Override
        public long limitBytes() {
            return limit;
        }

        @Override
        public boolean reserve(long bytes) {
            if (reserved + bytes > gives) {
                return false;
            }
            reserved += bytes;
            return true;
        }

        @Override
        public void release(long bytes) {
            reserved -= bytes;
            assertTrue(reserved >= 0, "released more than was reserved");
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

            @Override
            public void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing) {}
        }, false);
        return sequences;
    }
}
