package org.flinkbridge.chaos;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChaosOptionsTest {

    @Test
    void timersSpreadTheInputOverMoreKeysAndCombineWithTheOtherOptions() {
        ChaosOptions options = ChaosOptions.parse(new String[] {"--timers", "--transport=grpc", "--worker=rust",
                "--recovery=failover", "--quick", "--records=5000", "--worker-kills-only"});
        assertTrue(options.timers());
        assertEquals(ChaosOptions.TIMER_KEYS, options.keys());
        assertEquals("grpc", options.transport());
        assertEquals("rust", options.worker());
        assertEquals("failover", options.recovery());
        assertEquals(5000, options.records());
        assertEquals(0, options.taskManagerKills());
        assertEquals(3, options.workerKills());
    }

    @Test
    void withoutTimersTheKeysAreAsBefore() {
        ChaosOptions options = ChaosOptions.parse(new String[] {});
        assertFalse(options.timers());
        assertEquals(ChaosOptions.KEYS, options.keys());
        assertEquals(300_000, options.records());
    }

    @Test
    void timersRefuseDeadLettersAndNondeterministicNamingThem() {
        String deadLetters = assertThrows(IllegalArgumentException.class,
                () -> ChaosOptions.parse(new String[] {"--timers", "--dead-letters"})).getMessage();
        assertTrue(deadLetters.startsWith("--timers ") && deadLetters.contains("leave out --dead-letters"),
                deadLetters);
        String nondeterministic = assertThrows(IllegalArgumentException.class,
                () -> ChaosOptions.parse(new String[] {"--timers", "--nondeterministic", "--worker=python"}))
                .getMessage();
        assertTrue(nondeterministic.startsWith("--timers ") && nondeterministic.contains("leave out --nondeterministic"),
                nondeterministic);
    }
}
