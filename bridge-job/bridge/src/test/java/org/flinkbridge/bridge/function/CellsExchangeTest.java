package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cells as the exchange moves them (docs/protocol.md, "Cells"), without Flink: a key's cells go to the worker in
 * LOAD frames before its first record in the session, with that record's sequence; the worker's writes answering a
 * barrier reach the backend only with the barrier's end marker; writes that break the rules fail the task.
 */
class CellsExchangeTest {

    private final CountingWorker worker = new CountingWorker();
    private final Backend backend = new Backend();

    private SessionExchange exchange() {
        return exchange(1 << 20);
    }

    private SessionExchange exchange(long cellsBudgetBytes) {
        return new SessionExchange(new FixedSession(worker), () -> 1_000, 8, 50, WorkerLoss.FAILOVER, null,
                new DownstreamLog(), SessionExchange.Pending.NONE, record -> text(record).split(":")[0], backend,
                cellsBudgetBytes, SessionExchange.Timers.NONE);
    }

    @Test
    void aKeysCellsAreLoadedBeforeItsFirstRecordAndWrittenBackAtTheBarrier() throws IOException {
        backend.counts.put("a", 41L);
        SessionExchange exchange = exchange();

        exchange.record(0, "a", record("a:1"));
        exchange.record(0, "b", record("b:1"));
        exchange.record(0, "a", record("a:2"));
        exchange.takeArrived();

        // Each LOAD has the sequence of the record after it (sequence 0 is the first CLOCK).
        assertEquals(List.of("CLOCK 0", "LOAD 1 a=41", "RECORD 1 a", "LOAD 2 b=none", "RECORD 2 b", "RECORD 3 a"),
                worker.inputs);
        assertEquals(Map.of("a", 41L), backend.counts, "nothing is written before a barrier");

        exchange.checkpoint(7);

        assertEquals(Map.of("a", 43L, "b", 1L), backend.counts);
        exchange.record(0, "a", record("a:3"));
        assertEquals(List.of("BARRIER 4 evict []", "CLOCK 5", "RECORD 6 a"), worker.inputs.subList(6, 9),
                "a key stays resident across a barrier");
    }

    /**
     * Past the budget a barrier evicts the least recently used keys no record touched since the previous barrier;
     * an evicted key is loaded again with its next record, with what the barrier wrote back.
     */
    @Test
    void pastTheBudgetABarrierEvictsTheKeysUntouchedSinceThePreviousOne() throws IOException {
        SessionExchange exchange = exchange(1);
        exchange.record(0, "a", record("a:1"));
        exchange.record(0, "b", record("b:1"));
        exchange.checkpoint(1);
        assertEquals("BARRIER 3 evict []", worker.inputs.getLast(), "both keys were touched since the start");
        exchange.record(0, "b", record("b:2"));
        exchange.checkpoint(2);
        assertEquals("BARRIER 6 evict [a]", worker.inputs.getLast(), "a was not touched since barrier 1, b was");

        exchange.record(0, "a", record("a:2"));
        exchange.checkpoint(3);

        assertEquals(List.of("CLOCK 7", "LOAD 8 a=1", "RECORD 8 a", "BARRIER 9 evict [b]"), worker.inputs.subList(
                worker.inputs.size() - 4, worker.inputs.size()));
        assertEquals(Map.of("a", 2L, "b", 2L), backend.counts);
    }

    /**
     * A worker lost while the checkpoint takes its state: the barrier's writes are not applied, so the replay loads
     * the cells as of the previous barrier, and the writes the new session answers the replayed barrier with are
     * applied instead: each record counted once.
     */
    @Test
    void aWorkerLostWhileItsStateIsTakenLeavesTheBarriersWritesToTheReplay() throws IOException {
        backend.counts.put("a", 41L);
        CountingWorker replacement = new CountingWorker();
        SessionsInTurn sessions = new SessionsInTurn(List.of(worker, replacement)) {
            @Override
            public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
                if (current() == 0) {
                    throw new WorkerLostException("the worker is gone");
                }
                return List.of();
            }
        };
        SessionExchange exchange = new SessionExchange(sessions, () -> 1_000, 8, 50,
                new InPlaceRecovery(new ReplayJournal(1 << 20, 8), List.of()), null, new DownstreamLog(),
                SessionExchange.Pending.NONE, record -> text(record).split(":")[0], backend, 1 << 20,
                SessionExchange.Timers.NONE);
        exchange.record(0, "a", record("a:1"));
        exchange.record(0, "a", record("a:2"));

        exchange.checkpoint(1);

        assertEquals(List.of("CLOCK 0", "LOAD 1 a=41", "RECORD 1 a", "RECORD 2 a", "BARRIER 3"), replacement.inputs);
        assertEquals(Map.of("a", 43L), backend.counts);
    }

    @Test
    void cellWritesAnsweringARecordFailTheTask() {
        worker.writeOnRecords = true;
        SessionExchange exchange = exchange();

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class,
                () -> exchange.record(0, "a", record("a:1")));

        assertTrue(failure.getMessage().contains("with cell writes, which only answer a BARRIER"),
                failure.getMessage());
    }

    @Test
    void writesToAKeyNeverLoadedFailTheTask() throws IOException {
        worker.strayKey = "z";
        SessionExchange exchange = exchange();
        exchange.record(0, "a", record("a:1"));

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class,
                () -> exchange.checkpoint(1));

        assertTrue(failure.getMessage().contains("key 'z', which was never loaded"), failure.getMessage());
    }

    private static BridgeRecord record(String text) {
        return new BridgeRecord(text.getBytes(StandardCharsets.UTF_8), Map.of(), 0);
    }

    private static String text(BridgeRecord record) {
        return new String(record.payload, StandardCharsets.UTF_8);
    }

    private static long count(ByteString value) {
        return Long.parseLong(value.toStringUtf8());
    }

    /** The backend: one value cell (0) holding a count per key, as decimal text. */
    private static final class Backend implements SessionExchange.Cells {
        final Map<String, Long> counts = new HashMap<>();

        @Override
        public boolean declared() {
            return true;
        }

        @Override
        public List<KeyCells> load(String key, byte[] keyBytes, int maxBytes) {
            KeyCells.Builder load = KeyCells.newBuilder().setKey(ByteString.copyFrom(keyBytes));
            Long count = counts.get(key);
            if (count != null) {
                load.addCells(CellContent.newBuilder().setCell(0).setValue(ByteString.copyFromUtf8(count.toString())));
            }
            return List.of(load.build());
        }

        @Override
        public void write(String key, KeyCells writes) {
            for (CellWrite write : writes.getWritesList()) {
                counts.put(key, count(write.getValue()));
            }
        }
    }

    /** A worker in memory counting records per key in the value cell 0, answering at once. */
    private static final class CountingWorker extends AnsweringWorker {
        final Map<ByteString, Long> resident = new HashMap<>();
        final Map<ByteString, Long> changed = new LinkedHashMap<>();
        boolean writeOnRecords;
        String strayKey;

        @Override
        public void sendLoad(long sequence, KeyCells cells, Answers whileWaiting) {
            inputs.add("LOAD " + sequence + " " + cells.getKey().toStringUtf8() + "="
                    + (cells.getCellsCount() == 0 ? "none" : cells.getCells(0).getValue().toStringUtf8()));
            resident.put(cells.getKey(), cells.getCellsCount() == 0 ? 0 : count(cells.getCells(0).getValue()));
        }

        @Override
        public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting) {
            ByteString wireKey = ByteString.copyFrom(key);
            inputs.add("RECORD " + sequence + " " + wireKey.toStringUtf8());
            long count = resident.merge(wireKey, 1L, Long::sum);
            changed.put(wireKey, count);
            answer(to -> {
                if (writeOnRecords) {
                    to.cellWrites(sequence, writes(wireKey, count));
                }
                to.endOfOutputs(sequence);
            });
        }

        @Override
        public void sendBarrier(long sequence, long checkpointId, List<byte[]> evict, Answers whileWaiting) {
            sendBarrier(sequence, checkpointId, whileWaiting);
            inputs.set(inputs.size() - 1, "BARRIER " + sequence + " evict " + evict.stream()
                    .map(key -> new String(key, StandardCharsets.UTF_8)).toList());
            evict.forEach(key -> resident.remove(ByteString.copyFrom(key)));
        }

        @Override
        public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) {
            inputs.add("BARRIER " + sequence);
            List<KeyCells> writes = new ArrayList<>();
            changed.forEach((key, count) -> writes.add(writes(key, count)));
            if (strayKey != null) {
                writes.add(writes(ByteString.copyFromUtf8(strayKey), 1));
            }
            changed.clear();
            answer(to -> {
                for (KeyCells write : writes) {
                    to.cellWrites(sequence, write);
                }
                to.endOfOutputs(sequence);
            });
        }

        private static KeyCells writes(ByteString key, long count) {
            return KeyCells.newBuilder().setKey(key).setResidentBytes(8).addWrites(CellWrite.newBuilder().setCell(0)
                    .setOp(CellOp.CELL_OP_SET).setValue(ByteString.copyFromUtf8(Long.toString(count)))).build();
        }

        @Override
        public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) {
            answer(to -> to.endOfOutputs(sequence));
        }

        @Override
        public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) {
            inputs.add("CLOCK " + sequence);
            answer(to -> to.endOfOutputs(sequence));
        }
    }
}
