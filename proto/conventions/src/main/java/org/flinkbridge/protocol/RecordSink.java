package org.flinkbridge.protocol;

import java.util.Map;

/**
 * Receives a record as every transport carries it (docs/protocol.md, "record body"): its event time in ms, its
 * headers and its payload; each side builds its own record type from them.
 */
@FunctionalInterface
public interface RecordSink<T> {
    T record(long timestamp, Map<String, String> headers, byte[] payload);
}
