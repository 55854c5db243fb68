package org.flinkbridge.conformance;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;

/** A record as both transports carry it: event time, headers, payload. */
record KitRecord(long timestamp, Map<String, String> headers, byte[] payload) {

    KitRecord {
        headers = Map.copyOf(headers);
    }

    static KitRecord json(String json, long timestamp, Map<String, String> headers) {
        return new KitRecord(timestamp, headers, json.getBytes(StandardCharsets.UTF_8));
    }

    String text() {
        return new String(payload, StandardCharsets.UTF_8);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof KitRecord that && timestamp == that.timestamp && headers.equals(that.headers)
                && Arrays.equals(payload, that.payload);
    }

    @Override
    public int hashCode() {
        return 31 * Long.hashCode(timestamp) + headers.hashCode() + Arrays.hashCode(payload);
    }

    @Override
    public String toString() {
        return "record(ts=" + timestamp + ", headers=" + headers + ", payload=" + text() + ")";
    }
}
