package org.flinkbridge.chaos;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OracleTest {

    private static Oracle.Count count(String key, long count) {
        return new Oracle.Count(key, count);
    }

    @Test
    void everyCountOnceIsExactlyOnce() {
        Oracle.Result result = Oracle.compare(new int[] {2, 1},
                List.of(count("key-0", 1), count("key-1", 1), count("key-0", 2)));
        assertEquals(new Oracle.Result(3, 0, 0), result);
        assertTrue(result.exactlyOnce());
    }

    @Test
    void aRepeatedCountIsADuplicateAndAMissingOneALoss() {
        Oracle.Result result = Oracle.compare(new int[] {3, 1},
                List.of(count("key-0", 1), count("key-0", 1), count("key-0", 3), count("key-1", 1)));
        assertEquals(new Oracle.Result(4, 1, 1), result);
        assertFalse(result.exactlyOnce());
    }

    @Test
    void countsPastTheInputOrOfUnknownKeysAreDuplicates() {
        Oracle.Result result = Oracle.compare(new int[] {1},
                List.of(count("key-0", 1), count("key-0", 2), count("key-7", 1), count("other", 1)));
        assertEquals(new Oracle.Result(4, 3, 0), result);
    }
}
