package org.flinkbridge.protocol;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InputFailuresTest {

    @Test
    void aFailureReadsBackAsItWasWritten() throws Exception {
        byte[] body = InputFailures.body("parse", "java.io.IOException", "not JSON: ü", 4096);

        assertEquals(new InputFailures.Failure("parse", "java.io.IOException", "not JSON: ü"), read(body));
    }

    /** The message is what gives way when a frame cannot hold the whole failure; step and class stay whole. */
    @Test
    void aLongMessageIsCutToWhatTheFrameHoldsBesidesStepAndClass() throws Exception {
        byte[] body = InputFailures.body("parse", "java.io.IOException", "ünïcödé ".repeat(2_000), 2_032);

        InputFailures.Failure failure = read(body);
        assertTrue(body.length <= 2_032, body.length + " bytes");
        assertEquals("parse", failure.step());
        assertEquals("java.io.IOException", failure.errorClass());
        assertTrue(failure.message().contains(" bytes cut; the whole text is in the worker's log] "),
                failure.message());
    }

    @Test
    void aLengthRunningPastTheBodyIsCorrupt() {
        byte[] body = InputFailures.body("parse", "E", "m", 4096);
        body[0] = 100;

        assertThrows(CorruptRecordException.class, () -> read(body));
    }

    private static InputFailures.Failure read(byte[] body) throws CorruptRecordException {
        return InputFailures.read(MemorySegment.ofArray(body), 0, body.length);
    }
}
