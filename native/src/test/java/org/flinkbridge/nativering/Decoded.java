package org.flinkbridge.nativering;

import org.flinkbridge.transport.shm.RecordCodec;
import org.flinkbridge.transport.shm.RingException;

import java.lang.foreign.MemorySegment;
import java.util.Map;

/** A record body as the Java codec reads it. */
record Decoded(long timestamp, Map<String, String> headers, byte[] payload) {

    static Decoded read(MemorySegment file, long offset, int length) throws RingException {
        return RecordCodec.read(file, offset, length, Decoded::new);
    }
}
