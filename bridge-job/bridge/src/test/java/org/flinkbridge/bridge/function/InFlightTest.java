package org.flinkbridge.bridge.function;

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
            assertEquals(expected++, inFlight.add(InFlight.Kind.RECORD));
            assertEquals(expected++, inFlight.addWatermark(timestamp));
            assertEquals(expected++, inFlight.add(InFlight.Kind.BARRIER));
            assertTrue(inFlight.isFull());

            assertEquals(InFlight.Kind.RECORD, inFlight.oldestKind());
            inFlight.removeOldest();
            assertEquals(InFlight.Kind.WATERMARK, inFlight.oldestKind());
            assertEquals(timestamp, inFlight.oldestWatermark());
            inFlight.removeOldest();
            assertEquals(InFlight.Kind.BARRIER, inFlight.oldestKind());
            inFlight.removeOldest();
            assertEquals(0, inFlight.size());
        }
        assertEquals(15, inFlight.add(InFlight.Kind.END_OF_INPUT));
        assertEquals(InFlight.Kind.END_OF_INPUT, inFlight.oldestKind());
    }

    @Test
    void itRefusesMoreThanItsCapacityAndAWatermarkWithoutTimestamp() {
        InFlight inFlight = new InFlight(1);
        assertThrows(IllegalArgumentException.class, () -> inFlight.add(InFlight.Kind.WATERMARK));
        inFlight.add(InFlight.Kind.RECORD);
        assertThrows(IllegalStateException.class, () -> inFlight.add(InFlight.Kind.RECORD));
    }
}
