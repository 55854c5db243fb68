package org.flinkbridge.worker.sdk;

import org.flinkbridge.worker.steps.CellsStep;
import org.flinkbridge.worker.steps.FailingStep;
import org.flinkbridge.worker.steps.LastSeenStep;
import org.flinkbridge.worker.steps.TimerStep;
import org.flinkbridge.worker.steps.TotalStep;
import org.flinkbridge.worker.steps.UppercaseStep;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StepHarnessTest {

    private static Record record(String payload, long timestamp, Map<String, String> headers) {
        return new Record(payload.getBytes(StandardCharsets.UTF_8), headers, timestamp);
    }

    private static Record user(String name) {
        return record("{}", 0, Map.of("user", name));
    }

    private static List<String> payloads(List<Record> outputs) {
        return outputs.stream().map(output -> new String(output.payload(), StandardCharsets.UTF_8)).toList();
    }

    @Test
    void aUserStepIsLoadedByItsClassAsAWorkerLoadsIt() throws Exception {
        try (StepHarness harness = StepHarness.of(UppercaseStep.class, "")) {
            assertEquals(List.of("HELLO"), payloads(harness.process(record("hello", 5, Map.of()))));
            assertEquals(List.of(), harness.endInput());
        }
    }

    @Test
    void aFailedInputThrowsTheStepsOwnExceptionAndEndsTheSession() throws Exception {
        try (StepHarness harness = StepHarness.of(FailingStep.class, "{\"fail_in\": \"process\"}")) {
            Exception failure = assertThrows(IllegalStateException.class, () -> harness.process(user("a")));
            assertTrue(failure.getMessage().startsWith(FailingStep.MESSAGE_START), failure.getMessage());
            Exception refused = assertThrows(IllegalStateException.class, () -> harness.watermark(1));
            assertTrue(refused.getMessage().startsWith("the step already failed"), refused.getMessage());
        }
    }

    @Test
    void anInvalidConfigFailsAsItRefusesASession() {
        Exception refused = assertThrows(IllegalArgumentException.class,
                () -> StepHarness.of("batch", "{\"max_count\": 0}"));
        assertTrue(refused.getMessage().contains("max_count"), refused.getMessage());
    }

    @Test
    void runningCountGoesOnFromACheckpointRestoredIntoANewHarness() throws Exception {
        String config = "{\"key_header\": \"user\"}";
        SortedMap<Integer, byte[]> checkpoint;
        try (StepHarness first = StepHarness.of("running_count", config)) {
            first.process(3, user("a"));
            first.process(3, user("a"));
            first.process(7, user("b"));
            checkpoint = first.checkpoint();
        }
        assertEquals(Set.of(3, 7), checkpoint.keySet());
        try (StepHarness restored = StepHarness.of("running_count", config)) {
            restored.restore(checkpoint);
            assertEquals(List.of("{\"key\":\"a\",\"count\":3}"), payloads(restored.process(3, user("a"))));
            assertEquals(List.of("{\"key\":\"b\",\"count\":2}"), payloads(restored.process(7, user("b"))));
            // One instance per key group: key group 7's has never counted "a".
            assertEquals(List.of("{\"key\":\"a\",\"count\":1}"), payloads(restored.process(7, user("a"))));
        }
    }

    @Test
    void aBatchClosesOnALaterInputOnceTheClockHasMovedPastMaxWait() throws Exception {
        try (StepHarness harness = StepHarness.of("batch", "{\"max_count\": 100, \"max_wait_ms\": 1000}")) {
            harness.setProcessingTime(10_000);
            assertEquals(List.of(), harness.process(record("1", 1, Map.of())));
            harness.setProcessingTime(10_999);
            assertEquals(List.of(), harness.process(record("2", 2, Map.of())));
            harness.setProcessingTime(11_000);
            assertEquals(List.of("[1,2]"), payloads(harness.process(record("3", 3, Map.of()))));
            assertEquals(List.of("[3]"), payloads(harness.endInput()));
        }
    }

    @Test
    void aWatermarkReachesTheKeyGroupsInOrder() throws Exception {
        try (StepHarness harness = StepHarness.of("count", "{\"window_ms\": 10, \"key_header\": \"user\"}")) {
            harness.process(9, user("b"));
            harness.process(2, user("a"));
            List<Record> fired = harness.watermark(10);
            assertEquals(List.of("a", "b"), fired.stream().map(output -> output.headers().get("key")).toList());
        }
    }

    private static byte[] key(String key) {
        return key.getBytes(StandardCharsets.UTF_8);
    }

    private static Record number(long n) {
        return record(Long.toString(n), 0, Map.of());
    }

    @Test
    void aKeysTotalIsKeptInItsCellAndComesBackFromASnapshotInANewHarness() throws Exception {
        StepHarness.Checkpoint checkpoint;
        try (StepHarness total = StepHarness.of(TotalStep.class, "")) {
            assertEquals(List.of("5"), payloads(total.process(key("a"), number(5))));
            assertEquals(List.of("1"), payloads(total.process(key("b"), number(1))));
            assertEquals(List.of("7"), payloads(total.process(key("a"), number(2))));
            assertEquals("7", new String(total.value(key("a"), "total"), StandardCharsets.UTF_8));
            assertNull(total.value(key("c"), "total"));
            checkpoint = total.snapshot();
        }
        assertEquals(2, checkpoint.keysWithCells());
        assertEquals(Map.of(), checkpoint.states(), "the step keeps nothing in its instances");
        try (StepHarness total = StepHarness.of(TotalStep.class, "")) {
            total.restore(checkpoint);
            assertEquals(List.of("8"), payloads(total.process(key("a"), number(1))));
            assertEquals(List.of("11"), payloads(total.process(7, key("b"), number(10))), "any key group");
            assertEquals(List.of("3"), payloads(total.process(key("c"), number(3))));
        }
    }

    /** On the harness's clock, as on the bridge's: a value is gone once its write time plus the TTL is reached. */
    @Test
    void aValuePastItsTtlIsNeverHandedToTheStepAlsoAfterARestore() throws Exception {
        StepHarness.Checkpoint checkpoint;
        try (StepHarness last = StepHarness.of(LastSeenStep.class, "")) {
            last.setProcessingTime(1_000);
            assertEquals(List.of("previous=none"), payloads(last.process(key("a"), record("x", 0, Map.of()))));
            last.setProcessingTime(1_099);
            assertEquals(List.of("previous=x"), payloads(last.process(key("a"), record("y", 0, Map.of()))));
            last.setProcessingTime(1_199);
            assertEquals(List.of("previous=none"), payloads(last.process(key("a"), record("z", 0, Map.of()))),
                    "y was written at 1,099 with a TTL of 100 ms");
            last.setProcessingTime(1_250);
            checkpoint = last.snapshot();
        }
        try (StepHarness last = StepHarness.of(LastSeenStep.class, "")) {
            last.restore(checkpoint);
            last.setProcessingTime(1_298);
            assertArrayEquals(key("z"), last.value(key("a"), "last"));
            last.setProcessingTime(1_299);
            assertNull(last.value(key("a"), "last"), "z was written at 1,199");
            assertEquals(List.of("previous=none"), payloads(last.process(key("a"), record("w", 0, Map.of()))));
        }
    }

    @Test
    void aTestSeesAndWritesAKeysCellsAsTheStepDoes() throws Exception {
        try (StepHarness cells = StepHarness.of(CellsStep.class, "")) {
            cells.setValue(key("k"), "total", key("40"));
            cells.put(key("k"), "seen", key("x"), new byte[] {1});

            assertEquals(List.of("total=42 seen=2"), payloads(cells.process(key("k"), record("add 2 y", 0,
                    Map.of()))));
            assertEquals(List.of("x", "y"), cells.entries(key("k"), "seen").keySet().stream()
                    .map(entry -> new String(entry, StandardCharsets.UTF_8)).toList());
            assertEquals(0, cells.entries(key("other"), "seen").size());
            Exception unknown = assertThrows(IllegalArgumentException.class, () -> cells.value(key("k"), "nope"));
            assertEquals("the step declares no cell 'nope'; it declares [total, seen]", unknown.getMessage());
            assertThrows(IllegalArgumentException.class, () -> cells.entries(key("k"), "total"));
        }
    }

    /** Cells are the record's key's: a record without one cannot reach them, nor can a watermark. */
    @Test
    void aRecordWithoutAKeyCannotReachCells() throws Exception {
        try (StepHarness total = StepHarness.of(TotalStep.class, "")) {
            Exception refused = assertThrows(IllegalStateException.class, () -> total.process(number(1)));
            assertTrue(refused.getMessage().startsWith("step '" + TotalStep.class.getName() + "': cell 'total' is "
                    + "used outside the handling of a record"), refused.getMessage());
        }
    }

    // Timers: pending per key as the bridge's timer service holds them, fired as the bridge fires them.

    private static String fired(String domain, long timestamp, String note, long watermark) {
        return "fired " + domain + " " + timestamp + " note=" + note + " watermark=" + watermark;
    }

    @Test
    void aWatermarkFiresTheEventTimeTimersItPassesInTimestampOrderBeforeItReachesTheStep() throws Exception {
        try (StepHarness harness = StepHarness.of(TimerStep.class, "")) {
            harness.process(key("a"), record("event 20,note x", 1, Map.of()));
            harness.process(key("b"), record("event 10", 2, Map.of()));
            harness.process(key("a"), record("event 30,-event 30,proc 20", 3, Map.of()));
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 20),
                    new StepHarness.Timer(TimeDomain.PROCESSING_TIME, 20)), harness.timers(key("a")));

            assertEquals(List.of(fired("EVENT_TIME", 10, "none", Long.MIN_VALUE),
                    fired("EVENT_TIME", 20, "x", Long.MIN_VALUE)), payloads(harness.watermark(25)));
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.PROCESSING_TIME, 20)), harness.timers(key("a")));
            assertEquals(List.of(), harness.timers(key("b")));
            assertEquals(List.of(), harness.watermark(26));

            // A firing that sets a timer the same watermark passes: it fires within that watermark too.
            harness.process(key("c"), record("note again,event 40", 4, Map.of()));
            List<String> again = payloads(harness.watermark(100));
            assertEquals(7, again.size(), again.toString());
            assertEquals(fired("EVENT_TIME", 100, "again", 26), again.getLast());
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 110)), harness.timers(key("c")));
        }
    }

    @Test
    void processingTimeFiresItsTimersOnceTheClockReachesThemButTheEndOfInputDoesNot() throws Exception {
        try (StepHarness harness = StepHarness.of(TimerStep.class, "{\"cells\": false}")) {
            harness.process(key("a"), record("proc 1000,proc 5000", 1, Map.of()));
            assertEquals(List.of(), harness.setProcessingTime(999));
            assertEquals(List.of(fired("PROCESSING_TIME", 1000, "none", Long.MIN_VALUE)),
                    payloads(harness.setProcessingTime(1000)));
            assertEquals(List.of(), harness.endInput());
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.PROCESSING_TIME, 5000)), harness.timers(key("a")));
        }
    }

    @Test
    void aFailedInputChangesNoTimerAndTimersNeedAKeyedInput() throws Exception {
        try (StepHarness harness = StepHarness.of(TimerStep.class, "")) {
            assertThrows(IllegalStateException.class, () -> harness.process(key("a"), record("event 5,fail", 1,
                    Map.of())));
            assertEquals(List.of(), harness.timers(key("a")));
        }
        try (StepHarness harness = StepHarness.of(TimerStep.class, "{\"cells\": false}")) {
            Exception keyless = assertThrows(IllegalStateException.class,
                    () -> harness.process(record("event 5", 1, Map.of())));
            assertTrue(keyless.getMessage().startsWith("step 'org.flinkbridge.worker.steps.TimerStep' sets a timer "
                    + "outside the handling of a keyed input"), keyless.getMessage());
        }
    }

    @Test
    void aSnapshotCarriesThePendingTimersIntoANewHarness() throws Exception {
        StepHarness.Checkpoint saved;
        try (StepHarness first = StepHarness.of(TimerStep.class, "")) {
            first.process(3, key("a"), record("event 10,note y,proc 50", 1, Map.of()));
            saved = first.snapshot();
        }
        assertEquals(2, saved.pendingTimers());
        try (StepHarness restored = StepHarness.of(TimerStep.class, "")) {
            restored.restore(saved);
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 10),
                    new StepHarness.Timer(TimeDomain.PROCESSING_TIME, 50)), restored.timers(key("a")));
            assertEquals(List.of(fired("EVENT_TIME", 10, "y", Long.MIN_VALUE)), payloads(restored.watermark(10)));
            assertEquals(List.of(fired("PROCESSING_TIME", 50, "y", 10)), payloads(restored.setProcessingTime(60)));
        }
    }
}
