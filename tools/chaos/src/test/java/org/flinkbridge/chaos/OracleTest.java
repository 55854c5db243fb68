package org.flinkbridge.chaos;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OracleTest {

    /** An oracle that read {@code outputs}, given as key, count, key, count, ... */
    private static Oracle read(Object... outputs) {
        Oracle oracle = new Oracle();
        for (int i = 0; i < outputs.length; i += 2) {
            oracle.add((String) outputs[i], ((Number) outputs[i + 1]).longValue());
        }
        return oracle;
    }

    @Test
    void everyCountOnceIsExactlyOnce() {
        Oracle.Result result = read("key-0", 1, "key-1", 1, "key-0", 2).compare(new int[] {2, 1});
        assertEquals(new Oracle.Result(3, 0, 0), result);
        assertTrue(result.exactlyOnce());
    }

    @Test
    void aRepeatedCountIsADuplicateAndAMissingOneALoss() {
        Oracle.Result result = read("key-0", 1, "key-0", 1, "key-0", 3, "key-1", 1).compare(new int[] {3, 1});
        assertEquals(new Oracle.Result(4, 1, 1), result);
        assertFalse(result.exactlyOnce());
    }

    @Test
    void countsPastTheInputOrOfUnknownKeysAreDuplicates() {
        Oracle.Result result = read("key-0", 1, "key-0", 2, "key-7", 1, "other", 1).compare(new int[] {1});
        assertEquals(new Oracle.Result(4, 3, 0), result);
    }

    @Test
    void everyOutputNoInputCanGiveIsADuplicateEachTimeItIsRead() {
        Oracle.Result result = read("key-0", 0, "key-0", 0, "key-0", -5, "key-0", 9, "key-0", 9, "key-0", 1)
                .compare(new int[] {1});
        assertEquals(new Oracle.Result(6, 5, 0), result);
    }

    @Test
    void aKeyNeverWrittenLosesEveryCount() {
        assertEquals(new Oracle.Result(0, 0, 5), read().compare(new int[] {2, 3}));
    }
}
