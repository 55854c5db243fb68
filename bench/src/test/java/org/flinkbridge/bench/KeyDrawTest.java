package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class KeyDrawTest {

    @Test
    void theBuildChangesEveryKeyOnceInOrder() {
        KeyDraw draw = new KeyDraw(1_000);
        for (long index = 0; index < 1_000; index++) {
            assertEquals(0, draw.round(index));
            assertEquals(index, draw.key(index));
        }
        assertEquals(1, draw.round(1_000));
    }

    @Test
    void eachLaterRoundChangesOnePercentOfTheKeysDistinctAndAllKeysIn100Rounds() {
        KeyDraw draw = new KeyDraw(1_000);
        assertEquals(10, draw.perRound());
        assertEquals(1_000 + 100 * 10, draw.records(100));
        Set<Long> changedInAll = new HashSet<>();
        for (int round = 1; round <= 100; round++) {
            Set<Long> changed = new HashSet<>();
            for (long index = draw.firstRecord(round); index < draw.firstRecord(round) + draw.recordsIn(round);
                 index++) {
                assertEquals(round, draw.round(index));
                changed.add(draw.key(index));
            }
            assertEquals(10, changed.size(), "round " + round);
            changedInAll.addAll(changed);
        }
        assertEquals(1_000, changedInAll.size());
        assertEquals(101, draw.round(draw.records(100)));
    }

    @Test
    void aRoundOfFewerThan100KeysStillChangesOne() {
        KeyDraw draw = new KeyDraw(7);
        assertEquals(1, draw.perRound());
        for (int round = 1; round <= 8; round++) {
            assertEquals(1, draw.recordsIn(round));
            assertEquals((round - 1) % 7, draw.key(draw.firstRecord(round)), "round " + round);
        }
    }

    @Test
    void theLastChangeOfAKeyIsTheLastRecordThatChangedIt() {
        KeyDraw draw = new KeyDraw(250);
        int rounds = 130;
        long[] lastChange = new long[250];
        int[] lastRound = new int[250];
        for (long index = 0; index < draw.records(rounds); index++) {
            lastChange[(int) draw.key(index)] = index;
            lastRound[(int) draw.key(index)] = draw.round(index);
        }
        for (long key = 0; key < 250; key++) {
            assertEquals(lastRound[(int) key], draw.lastRound(key, rounds), "key " + key);
            assertEquals(lastChange[(int) key], draw.lastChange(key, rounds), "key " + key);
        }
        assertEquals(0, draw.lastRound(200, 0));
        assertEquals(200, draw.lastChange(200, 0));
    }

    @Test
    void refusesNoKeys() {
        assertThrows(IllegalArgumentException.class, () -> new KeyDraw(0));
    }
}
