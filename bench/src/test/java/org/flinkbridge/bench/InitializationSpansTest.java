package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class InitializationSpansTest {

    @Test
    void theRestoredBytesAreSummedOverThePlacesFlinkTellsApart() {
        // As Flink 2.2 names them: max and sum over the subtasks, of each place's part.
        Map<String, Object> attributes = Map.of(
                "jobId", "0f2c",
                "checkpointId", 12L,
                "initializationStatus", "COMPLETED",
                "maxRestoredStateSizeBytes.LOCAL_DISK", 50_000L,
                "sumRestoredStateSizeBytes.LOCAL_DISK", 100_000L,
                "maxRestoredStateSizeBytes.LOCAL_MEMORY", 300L,
                "sumRestoredStateSizeBytes.LOCAL_MEMORY", 500L,
                "maxRestoreStateDurationMs", 40L,
                "sumRestoreStateDurationMs", 70L);
        assertEquals(new InitializationSpans.Restored(50_300, 100_500), InitializationSpans.restored(attributes));
    }

    @Test
    void aJobThatRestoredNothingRestoredNoBytes() {
        Map<String, Object> attributes = Map.of("jobId", "0f2c", "initializationStatus", "COMPLETED",
                "maxMailboxStartDurationMs", 3L, "sumMailboxStartDurationMs", 5L);
        assertEquals(new InitializationSpans.Restored(0, 0), InitializationSpans.restored(attributes));
    }
}
