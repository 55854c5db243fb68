package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.StepHarness;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The built-in {@code batch} step in a keyed session (docs/steps.md): one open batch per key in the value cell
 * {@code batch}, closed by its processing-time timer, its event-time timer at the end of input, or {@code max_count}.
 * (In a session that is not keyed it keeps its whole-instance state: StepsTest, BuiltInStepsGoldenTest.)
 */
class BatchStepTest {

    private static final byte[] A = b("a");
    private static final byte[] B = b("b");
    private static final StepHarness.Timer AT_THE_END = new StepHarness.Timer(TimeDomain.EVENT_TIME, Long.MAX_VALUE);

    private static byte[] b(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static StepHarness batch(long maxCount, long maxWaitMillis) throws Exception {
        return StepHarness.keyed("b", "batch", "{\"max_count\":" + maxCount + ",\"max_wait_ms\":" + maxWaitMillis + "}");
    }

    private static Record rec(String payload, long timestamp) {
        return new Record(b(payload), Map.of("n", payload), timestamp);
    }

    private static List<String> texts(List<Record> records) {
        return records.stream().map(record -> new String(record.payload(), StandardCharsets.UTF_8)).toList();
    }

    /** Stamps the clock at {@code now}, then gives {@code key} a record of each payload (timestamps 1, 2, ...). */
    private static List<Record> give(StepHarness batch, long now, byte[] key, String... payloads) throws Exception {
        batch.setProcessingTime(now);
        List<Record> outputs = new ArrayList<>();
        for (int i = 0; i < payloads.length; i++) {
            outputs.addAll(batch.process(key, rec(payloads[i], i + 1)));
        }
        return outputs;
    }

    private static StepHarness.Timer closing(long at) {
        return new StepHarness.Timer(TimeDomain.PROCESSING_TIME, at);
    }

    /** One batch as the whole-instance state encodes it: version 2, opened at, count, each record (one header). */
    private static byte[] encoded(long openedAt, Record... records) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeByte(2);
        out.writeLong(openedAt);
        out.writeInt(records.length);
        for (Record record : records) {
            out.writeLong(record.timestamp());
            out.writeInt(1);
            for (String text : List.of("n", record.headers().get("n"))) {
                out.writeInt(b(text).length);
                out.write(b(text));
            }
            out.writeInt(record.payload().length);
            out.write(record.payload());
        }
        return bytes.toByteArray();
    }

    @Test
    void aQuietKeysBatchClosesWhenProcessingTimePassesMaxWait() throws Exception {
        try (StepHarness batch = batch(100, 500)) {
            batch.setProcessingTime(1_000);
            assertEquals(List.of(), batch.process(A, rec("1", 7)));
            assertEquals(List.of(closing(1_500), AT_THE_END), batch.timers(A));
            batch.setProcessingTime(1_200);
            assertEquals(List.of(), batch.process(A, rec("2", 9)));
            assertEquals(List.of(closing(1_500), AT_THE_END), batch.timers(A), "only the first record sets timers");
            assertArrayEquals(encoded(1_000, rec("1", 7), rec("2", 9)), batch.value(A, BatchStep.CELL),
                    "the cell holds the batch as the whole-instance state encodes one");
            assertEquals(List.of(), batch.watermark(1_000_000), "a watermark closes nothing in a keyed session");

            assertEquals(List.of(), batch.setProcessingTime(1_499));
            List<Record> closed = batch.setProcessingTime(1_500);
            assertEquals(List.of("[1,2]"), texts(closed));
            assertEquals(Map.of("n", "1", "batch_size", "2"), closed.getFirst().headers());
            assertEquals(9, closed.getFirst().timestamp(), "the last record's timestamp");
            assertEquals(List.of(), batch.timers(A), "the firing deleted the event-time timer");
            assertNull(batch.value(A, BatchStep.CELL));
            assertEquals(List.of(), batch.endInput());
        }
    }

    @Test
    void maxCountClosesAtOnceAndDeletesTheTimers() throws Exception {
        try (StepHarness batch = batch(3, 500)) {
            List<Record> closed = give(batch, 1_000, A, "1", "2", "3");
            assertEquals(List.of("[1,2,3]"), texts(closed));
            assertEquals(Map.of("n", "1", "batch_size", "3"), closed.getFirst().headers());
            assertEquals(List.of(), batch.timers(A));
            assertNull(batch.value(A, BatchStep.CELL));
            assertEquals(0, batch.snapshot().pendingTimers());

            // The next record opens a new batch, with timers of its own.
            give(batch, 2_000, A, "4");
            assertEquals(List.of(closing(2_500), AT_THE_END), batch.timers(A));
        }
        try (StepHarness one = batch(1, 500)) {
            assertEquals(List.of("[\"x\"]"), texts(one.process(A, rec("x", 1))), "a payload that is not JSON");
            assertEquals(List.of(), one.timers(A), "a batch closed by its first record sets no timer");
        }
    }

    @Test
    void theEndOfInputEmitsEveryOpenBatchByItsEventTimeTimer() throws Exception {
        try (StepHarness batch = batch(100, 500)) {
            give(batch, 1_000, B, "b1");
            give(batch, 1_000, A, "a1", "a2");
            List<Record> ended = batch.endInput();
            assertEquals(List.of("[\"a1\",\"a2\"]", "[\"b1\"]"), texts(ended), "in key order, as the timers fire");
            assertEquals(List.of(), batch.timers(A), "the firing deleted the processing-time timer");
            assertEquals(List.of(), batch.timers(B));
            assertEquals(0, batch.snapshot().pendingTimers());
        }
    }

    @Test
    void twoKeysBatchSeparately() throws Exception {
        try (StepHarness batch = batch(2, 500)) {
            give(batch, 1_000, A, "a1");
            give(batch, 1_100, B, "b1");
            assertEquals(List.of("[\"a1\",\"a2\"]"), texts(batch.process(A, rec("a2", 3))));
            assertEquals(List.of(), batch.timers(A));
            assertEquals(List.of(closing(1_600), AT_THE_END), batch.timers(B));
            assertEquals(List.of(), batch.setProcessingTime(1_599));
            assertEquals(List.of("[\"b1\"]"), texts(batch.setProcessingTime(1_600)));
        }
    }

    @Test
    void aSnapshotKeepsTheOpenBatchAndItsTimers() throws Exception {
        StepHarness.Checkpoint saved;
        try (StepHarness batch = batch(3, 500)) {
            give(batch, 1_000, A, "1", "2");
            give(batch, 1_000, B, "3");
            saved = batch.snapshot();
        }
        assertEquals(Map.of(), saved.states(), "no whole-instance state in a keyed session");
        assertEquals(2, saved.keysWithCells());
        assertEquals(4, saved.pendingTimers());
        try (StepHarness batch = batch(3, 500)) {
            batch.restore(saved);
            batch.setProcessingTime(1_200);
            assertEquals(List.of(closing(1_500), AT_THE_END), batch.timers(A));
            assertEquals(List.of("[1,2,4]"), texts(batch.process(A, rec("4", 4))));
            assertEquals(List.of(), batch.timers(A));
            assertEquals(List.of("[3]"), texts(batch.setProcessingTime(1_500)));
            assertEquals(List.of(), batch.timers(B));
        }
    }

    @Test
    void wholeInstanceStateIsRefusedInAKeyedSessionWhenItHoldsRecords() throws Exception {
        SortedMap<Integer, byte[]> open;
        SortedMap<Integer, byte[]> empty;
        try (StepHarness unkeyed = StepHarness.named("b", "batch", "{\"max_count\":2}")) {
            unkeyed.process(rec("1", 1));
            open = unkeyed.checkpoint();
            unkeyed.process(rec("2", 2));
            empty = unkeyed.checkpoint();
        }
        try (StepHarness batch = batch(2, 500)) {
            Exception refused = assertThrows(Exception.class, () -> batch.restore(open));
            assertTrue(refused.getMessage().contains("step 'b' (batch) is given an open batch of 1 records as "
                    + "whole-instance state"), refused.getMessage());
        }
        try (StepHarness batch = batch(2, 500)) {
            batch.restore(empty);
            batch.process(A, rec("3", 3));
            assertEquals(List.of("[3]"), texts(batch.endInput()));
        }
    }

    @Test
    void aCellThatHoldsNoBatchFailsTheRecordNamingTheCell() throws Exception {
        try (StepHarness batch = batch(2, 500)) {
            batch.setValue(A, BatchStep.CELL, new byte[] {2, 0});
            IOException broken = assertThrows(IOException.class, () -> batch.process(A, rec("1", 1)));
            assertTrue(broken.getMessage().contains("step 'b' (batch): cell 'batch' holds no batch it can read: "
                    + "batch state ends early"), broken.getMessage());
        }
    }
}
