package org.flinkbridge.bench;

import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RecoveryInPlaceTest {

    private static final Map<Integer, RecoveryMetrics.Subtask> BOTH_ONCE = Map.of(
            0, new RecoveryMetrics.Subtask(1, 812, 250), 1, new RecoveryMetrics.Subtask(1, 640, 0));

    @Test
    void aKillIsOkWhereEverySubtaskRecoveredOnceAndTheAnswersWereExactlyOnce() {
        assertEquals("ok", RecoveryInPlace.judge(List.of(42L), BOTH_ONCE, 2, null));
    }

    @Test
    void aKillFailsWithoutAWorkerAProblemOrASubtaskThatDidNotRecoverOnce() {
        assertEquals("failed: no worker process to kill", RecoveryInPlace.judge(List.of(), BOTH_ONCE, 2, null));
        assertEquals("failed: input 7 answered twice",
                RecoveryInPlace.judge(List.of(42L), BOTH_ONCE, 2, "input 7 answered twice"));
        assertEquals("failed: 1 of 2 subtasks report the bridge's recovery metrics", RecoveryInPlace.judge(
                List.of(42L), Map.of(0, new RecoveryMetrics.Subtask(1, 5, 0)), 2, null));
        assertEquals("failed: subtask 1 recovered 0 times, not once", RecoveryInPlace.judge(List.of(42L),
                Map.of(0, new RecoveryMetrics.Subtask(1, 5, 0), 1, new RecoveryMetrics.Subtask(0, 0, 0)), 2, null));
    }

    @Test
    void theColumnGivesTheMostInBoldEachSubtaskAndTheTimesFromTheKill() {
        RecoveryInPlace recovery = new RecoveryInPlace("ok", List.of(42L), BOTH_ONCE, 1_130, 1_190, 2_950);
        assertTrue(recovery.measured());
        assertEquals(812, recovery.maxMillis());
        assertEquals("**812** (subtasks 812, 640; 250 inputs replayed); after the kill: first answer 1,130, all 1,190,"
                + " next checkpoint 2,950", recovery.summary());
    }

    @Test
    void theColumnSaysWhyWhereNothingWasMeasuredNeverBlank() {
        RecoveryInPlace off = RecoveryInPlace.notMeasured(StateBench.INSTANCE_RECOVERY);
        assertFalse(off.measured());
        assertEquals(StateBench.INSTANCE_RECOVERY, off.summary());
        assertEquals("failed: a / b", RecoveryInPlace.notMeasured("failed: a | b").summary());
        assertTrue(StateBench.Result.notRun(StateBench.Workload.CELLS, "java", 10, "failed: x").recovery().summary()
                .startsWith("not measured"));
    }

    @Test
    void anAnswersCountComesFromItsHeaderOrRunningCountsJson() {
        assertEquals(7, RecoveryInPlace.countOf(new BridgeRecord(new byte[0], Map.of("count", "7"), 1)));
        assertEquals(12, RecoveryInPlace.countOf(record("{\"key\":\"key-3\",\"count\":12}")));
        assertEquals(3, RecoveryInPlace.countOf(record("{\"key\": \"key-3\", \"count\": 3}")));
        assertEquals(-1, RecoveryInPlace.countOf(record("{\"id\":5,\"key\":\"key-3\"}")));
    }

    private static BridgeRecord record(String json) {
        return new BridgeRecord(json.getBytes(StandardCharsets.UTF_8), Map.of(), 1);
    }
}
