package org.flinkbridge.nativering;

import org.flinkbridge.protocol.CorruptRecordException;
import org.flinkbridge.protocol.RecordCodec;

import java.lang.foreign.MemorySegment;
import java.util.Map;

/** A record body as the Java codec reads it. */
record Decoded(long timestamp, Map<String, String> headers, byte[] payload) {

    static Decoded read(MemorySegment file, long offset, int length) throws CorruptRecordException {
        return RecordCodec.read(file, offset, length, Decoded::new);
    }
}
