package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.InputKind;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InFlightTest {

    /** Every long is a watermark timestamp, the ones near Long.MIN_VALUE included, and keeps its place. */
    @Test
    void inputsComeOutInOrderWithTheirKindsAndAnyWatermark() {
        InFlight inFlight = new InFlight(3);
        long[] extremes = {Long.MIN_VALUE, Long.MIN_VALUE + 1, Long.MIN_VALUE + 2, -1, Long.MAX_VALUE};
        long expected = 0;
        for (long timestamp : extremes) {
            assertEquals(expected++, inFlight.add(InputKind.RECORD));
            assertEquals(expected++, inFlight.addWatermark(timestamp));
            assertEquals(expected++, inFlight.add(InputKind.BARRIER));
            assertTrue(inFlight.isFull());

            assertEquals(InputKind.RECORD, inFlight.oldestKind());
            inFlight.removeOldest();
            assertEquals(InputKind.WATERMARK, inFlight.oldestKind());
            assertEquals(timestamp, inFlight.oldestWatermark());
            inFlight.removeOldest();
            assertEquals(InputKind.BARRIER, inFlight.oldestKind());
            inFlight.removeOldest();
            assertEquals(0, inFlight.size());
        }
        assertEquals(15, inFlight.add(InputKind.END_OF_INPUT));
        assertEquals(InputKind.END_OF_INPUT, inFlight.oldestKind());
    }

    @Test
    void itRefusesMoreThanItsCapacityAndAWatermarkWithoutTimestamp() {
        InFlight inFlight = new InFlight(1);
        assertThrows(IllegalArgumentException.class, () -> inFlight.add(InputKind.WATERMARK));
        inFlight.add(InputKind.RECORD);
        assertThrows(IllegalStateException.class, () -> inFlight.add(InputKind.RECORD));
    }
}
