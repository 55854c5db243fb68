package org.flinkbridge.worker.sdk;

import java.util.Map;

/**
 * One record as application logic sees it: the payload bytes, string headers and the event timestamp in
 * milliseconds. The same fields as the prototype's {@code Message}.
 */
public record Record(byte[] payload, Map<String, String> headers, long timestamp) {

    public Record {
        headers = Map.copyOf(headers);
    }

    /** A copy with another payload, keeping headers and timestamp. */
    public Record withPayload(byte[] newPayload) {
        return new Record(newPayload, headers, timestamp);
    }
}
