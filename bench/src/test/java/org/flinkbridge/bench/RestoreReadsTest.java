package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class RestoreReadsTest {

    /** Two RocksDB handles of a job that ran at 2 subtasks (max parallelism 128), each read whole. */
    private static final List<RestoreReads.Piece> TWO_HANDLES = List.of(
            new RestoreReads.Piece(0, 63, 100, null), new RestoreReads.Piece(64, 127, 200, null));

    @Test
    void theSameParallelismReadsEachSubtasksOwnHandle() {
        assertArrayEquals(new long[] {100, 200}, RestoreReads.perSubtask(TWO_HANDLES, 128, 2));
    }

    @Test
    void oneSubtaskReadsEverything() {
        assertArrayEquals(new long[] {300}, RestoreReads.perSubtask(TWO_HANDLES, 128, 1));
    }

    @Test
    void scalingUpReadsAWholeHandleForEveryRangeInsideIt() {
        assertArrayEquals(new long[] {100, 100, 200, 200}, RestoreReads.perSubtask(TWO_HANDLES, 128, 4));
    }

    @Test
    void aHandleWithKeyGroupOffsetsIsReadForTheSelectedKeyGroupsOnly() {
        long[] keyGroupBytes = new long[128];
        Arrays.fill(keyGroupBytes, 10);
        keyGroupBytes[127] = 1_000;
        List<RestoreReads.Piece> raw = List.of(new RestoreReads.Piece(0, 127, 2_270, keyGroupBytes));
        assertArrayEquals(new long[] {320, 320, 320, 1_310}, RestoreReads.perSubtask(raw, 128, 4));
    }

    @Test
    void aHandleOutsideTheRangeIsNotRead() {
        List<RestoreReads.Piece> one = List.of(new RestoreReads.Piece(64, 127, 200, null));
        assertArrayEquals(new long[] {0, 200}, RestoreReads.perSubtask(one, 128, 2));
    }
}
