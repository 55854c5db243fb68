package org.flinkbridge.worker.sdk;

import org.flinkbridge.worker.steps.CellsStep;
import org.flinkbridge.worker.steps.FailingStep;
import org.flinkbridge.worker.steps.LastSeenStep;
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
}
