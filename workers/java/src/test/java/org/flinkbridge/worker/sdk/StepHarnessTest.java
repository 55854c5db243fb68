package org.flinkbridge.worker.sdk;

import org.flinkbridge.worker.steps.FailingStep;
import org.flinkbridge.worker.steps.UppercaseStep;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
