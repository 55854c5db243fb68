package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StateBackendsTest {

    @Test
    void aValueIsTheOneItsKeysChangeInItsRoundWrote() {
        byte[] value = StateBackends.value(42, 3);
        assertEquals(StateBackends.VALUE_BYTES, value.length);
        assertDoesNotThrow(() -> StateBackends.check(value, 42, 3));
        assertDoesNotThrow(() -> StateBackends.check(null, 42, -1));
    }

    @Test
    void aValueOfAnotherRoundOrKeyOrNoneWhereOneWasWrittenFailsNamingWhatWasRead() {
        String otherRound = assertThrows(IllegalStateException.class,
                () -> StateBackends.check(StateBackends.value(42, 2), 42, 3)).getMessage();
        assertTrue(otherRound.contains("key 42: read the value of round 2 and key 42 where round 3 wrote its value"),
                otherRound);
        assertThrows(IllegalStateException.class, () -> StateBackends.check(StateBackends.value(41, 3), 42, 3));
        String none = assertThrows(IllegalStateException.class, () -> StateBackends.check(null, 42, 0)).getMessage();
        assertTrue(none.contains("read no value where round 0 wrote its value"), none);
        String unexpected = assertThrows(IllegalStateException.class,
                () -> StateBackends.check(StateBackends.value(42, 0), 42, -1)).getMessage();
        assertTrue(unexpected.contains("where none was"), unexpected);
    }

    @Test
    void aPhaseGivesTheNearestRankPercentilesOfItsCheckpoints() {
        List<StateBackends.Checkpoint> checkpoints = LongStream.rangeClosed(1, 200)
                .mapToObj(i -> new StateBackends.Checkpoint(i, 1_000 + i, i, 201 - i)).toList();

        StateBackends.Phase phase = StateBackends.Phase.of(checkpoints);

        assertEquals(new StateBackends.Phase(200, 1_100, 1_198, 100, 198, 100, 198), phase);
        assertEquals(new StateBackends.Phase(0, 0, 0, 0, 0, 0, 0), StateBackends.Phase.of(List.of()));
    }
}
