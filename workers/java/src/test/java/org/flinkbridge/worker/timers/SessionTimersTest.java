package org.flinkbridge.worker.timers;

import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.sdk.Timers;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SessionTimersTest {

    /** The ring's encoding, written without building messages, is the protobuf encoding byte for byte. */
    @Test
    void theRingEncodingIsTheProtobufEncoding() {
        SessionTimers timers = new SessionTimers(new SessionClock());
        Timers first = new StepTimers(timers, 0, "first").declare();
        Timers far = new StepTimers(timers, 300, "far").declare();
        timers.enter();
        first.setEventTime(0);
        first.setEventTime(-1);
        far.deleteProcessingTime(Long.MAX_VALUE);
        far.setProcessingTime(Long.MIN_VALUE);
        for (int i = 0; i < 20; i++) {
            first.deleteEventTime(1L << (3 * i));
        }
        byte[] expected = timers.toProto().toByteArray();
        assertEquals(expected.length, timers.encodedLength());
        // At an offset in a larger segment, as in a ring.
        byte[] ring = new byte[expected.length + 16];
        timers.encode(MemorySegment.ofArray(ring), 8);
        assertArrayEquals(expected, java.util.Arrays.copyOfRange(ring, 8, 8 + expected.length));
        assertEquals(24, timers.toProto().getChangesCount());
    }

    @Test
    void timersAreSetOnlyWhileAKeyedInputIsHandledAndDeclaredOnlyInOpen() {
        SessionTimers timers = new SessionTimers(new SessionClock());
        StepTimers step = new StepTimers(timers, 2, "late");
        Timers handle = step.declare();
        Exception outside = assertThrows(IllegalStateException.class, () -> handle.setEventTime(1));
        assertTrue(outside.getMessage().startsWith("step 'late' sets a timer outside the handling of a keyed input"),
                outside.getMessage());
        step.opened();
        Exception afterOpen = assertThrows(IllegalStateException.class, step::declare);
        assertEquals("step 'late' declares timers after it opened: a step declares its timers in open()",
                afterOpen.getMessage());
        timers.seal();
        Exception notFirst = assertThrows(IllegalStateException.class,
                () -> new StepTimers(timers, 0, "other").declare());
        assertTrue(notFirst.getMessage().contains("declares timers in this instance but not in its first"),
                notFirst.getMessage());
        assertEquals("late", timers.firstStep());
        assertEquals(Long.MIN_VALUE, handle.currentWatermark());
    }
}
