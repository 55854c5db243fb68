package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.InputKind;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InFlightTest {

    /**
     * Every long is a watermark timestamp, the ones near Long.MIN_VALUE included, and keeps its place; a record is
     * kept until it is answered.
     */
    @Test
    void inputsComeOutInOrderWithTheirKindsAndAnyWatermark() {
        InFlight inFlight = new InFlight(3);
        long[] extremes = {Long.MIN_VALUE, Long.MIN_VALUE + 1, Long.MIN_VALUE + 2, -1, Long.MAX_VALUE};
        long expected = 0;
        BridgeRecord record = BridgeRecord.ofUtf8("r", 1);
        for (long timestamp : extremes) {
            assertEquals(expected++, inFlight.addRecord(record, null));
            assertEquals(expected++, inFlight.addWatermark(timestamp));
            assertEquals(expected++, inFlight.add(InputKind.BARRIER));
            assertTrue(inFlight.isFull());

            assertEquals(InputKind.RECORD, inFlight.oldestKind());
            assertSame(record, inFlight.oldestRecord());
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
    void itRefusesMoreThanItsCapacityAndAWatermarkOrARecordWithoutItsValue() {
        InFlight inFlight = new InFlight(1);
        assertThrows(IllegalArgumentException.class, () -> inFlight.add(InputKind.WATERMARK));
        assertThrows(IllegalArgumentException.class, () -> inFlight.add(InputKind.RECORD));
        inFlight.add(InputKind.CLOCK);
        assertThrows(IllegalStateException.class, () -> inFlight.add(InputKind.CLOCK));
    }
}
