package org.flinkbridge.records;

import org.apache.flink.api.common.typeinfo.TypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInfoFactory;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;

import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A record as it flows through the Flink job: payload bytes, string headers and the event timestamp (ms).
 * The same fields as the prototype's {@code Message}. Serialised by Flink's POJO serializer, with the
 * header map typed explicitly so it never falls back to Kryo.
 */
@TypeInfo(BridgeRecord.TypeFactory.class)
public class BridgeRecord {

    public byte[] payload;
    public Map<String, String> headers;
    public long timestamp;

    public BridgeRecord() {
        this(new byte[0], new HashMap<>(), 0L);
    }

    public BridgeRecord(byte[] payload, Map<String, String> headers, long timestamp) {
        this.payload = payload;
        this.headers = headers;
        this.timestamp = timestamp;
    }

    /** A record from its fields as a transport decodes them (a {@code RecordSink}). */
    public static BridgeRecord fromWire(long timestamp, Map<String, String> headers, byte[] payload) {
        return new BridgeRecord(payload, headers, timestamp);
    }

    public static BridgeRecord ofUtf8(String payload, long timestamp) {
        return new BridgeRecord(payload.getBytes(StandardCharsets.UTF_8), new HashMap<>(), timestamp);
    }

    public String payloadAsString() {
        return new String(payload, StandardCharsets.UTF_8);
    }

    /** The payload as text, which is what the print sink shows. */
    @Override
    public String toString() {
        return payloadAsString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BridgeRecord other
                && timestamp == other.timestamp
                && Arrays.equals(payload, other.payload)
                && Objects.equals(headers, other.headers);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(payload) + Objects.hashCode(headers)) + Long.hashCode(timestamp);
    }

    public static final class TypeFactory extends TypeInfoFactory<BridgeRecord> {
        @Override
        public TypeInformation<BridgeRecord> createTypeInfo(
                Type type, Map<String, TypeInformation<?>> genericParameters) {
            return Types.POJO(BridgeRecord.class, Map.of(
                    "payload", Types.PRIMITIVE_ARRAY(Types.BYTE),
                    "headers", Types.MAP(Types.STRING, Types.STRING),
                    "timestamp", Types.LONG));
        }
    }
}
