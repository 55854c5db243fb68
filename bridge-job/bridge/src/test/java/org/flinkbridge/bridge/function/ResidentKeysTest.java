package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which keys a barrier evicts from a session's worker: budget, recency, keys in use, and the frame's room. */
class ResidentKeysTest {

    private static ByteString key(String name) {
        return ByteString.copyFrom(name, StandardCharsets.ISO_8859_1);
    }

    private static List<String> names(List<byte[]> keys) {
        return keys.stream().map(k -> new String(k, StandardCharsets.ISO_8859_1)).toList();
    }

    /** Three keys of 1,000 bytes of cells, each weighing 1,000 + 1 + 128 bytes. */
    private static ResidentKeys threeLoaded(long budget) {
        ResidentKeys resident = new ResidentKeys(budget);
        for (String name : List.of("a", "b", "c")) {
            assertFalse(resident.touch(key(name)));
            resident.loaded(key(name), name, 1_000);
        }
        return resident;
    }

    @Test
    void withinTheBudgetNothingIsEvicted() {
        ResidentKeys resident = threeLoaded(3 * 1_129);
        assertEquals(List.of(), resident.evictAtBarrier(1 << 20));
        assertEquals(3, resident.count());
        assertEquals(3 * 1_129, resident.bytes());
    }

    @Test
    void pastTheBudgetTheLeastRecentlyUsedUntouchedKeysGoFirst() {
        ResidentKeys resident = threeLoaded(1_129);
        resident.evictAtBarrier(0);
        // since that barrier (which had no room to evict), "a" is used again: "b" and "c" go, eldest first
        assertTrue(resident.touch(key("a")));
        assertEquals(List.of("b", "c"), names(resident.evictAtBarrier(1 << 20)));
        assertEquals(1_129, resident.bytes());
        assertEquals("a", resident.key(key("a")));
    }

    @Test
    void aKeyTouchedSinceTheLastBarrierStaysEvenPastTheBudget() {
        ResidentKeys resident = threeLoaded(0);
        // every key was touched (loaded) since the last barrier: none may go, whatever the budget
        assertEquals(List.of(), resident.evictAtBarrier(1 << 20));
        assertEquals(List.of("a", "b", "c"), names(resident.evictAtBarrier(1 << 20)));
        assertEquals(0, resident.count());
        assertEquals(0, resident.bytes());
    }

    @Test
    void aBarrierListsOnlyTheKeysItsFrameHasRoomForAndTheNextOneTheRest() {
        ResidentKeys resident = threeLoaded(0);
        resident.evictAtBarrier(0);
        int roomForTwo = 2 * (1 + ResidentKeys.LISTED_KEY_OVERHEAD);
        assertEquals(List.of("a", "b"), names(resident.evictAtBarrier(roomForTwo)));
        assertEquals(1, resident.count());
        assertEquals(List.of("c"), names(resident.evictAtBarrier(roomForTwo)));
        assertEquals(0, resident.bytes());
    }

    @Test
    void aKeyWeighsWhatTheWorkerSaysItHolds() {
        ResidentKeys resident = threeLoaded(Long.MAX_VALUE);
        resident.weigh(key("b"), 5_000);
        assertEquals(1_129 + 5_129 + 1_129, resident.bytes());
        resident.weigh(key("unknown"), 7);
        assertEquals(1_129 + 5_129 + 1_129, resident.bytes());
    }
}
