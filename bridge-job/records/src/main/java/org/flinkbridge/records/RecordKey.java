package org.flinkbridge.records;

import org.apache.flink.api.java.functions.KeySelector;
import org.flinkbridge.pipeline.KeySpec;
import org.flinkbridge.protocol.JsonFields;

import java.io.IOException;

/**
 * The key a record is partitioned by: a header, or a top-level field of a JSON payload (read with a
 * streaming parser, without building a tree). A record without it gets the empty key, so it is still
 * processed, all such records by one subtask.
 */
public final class RecordKey implements KeySelector<BridgeRecord, String> {

    private final KeySpec spec;

    public RecordKey(KeySpec spec) {
        this.spec = spec;
    }

    @Override
    public String getKey(BridgeRecord record) throws IOException {
        return switch (spec.kind()) {
            case HEADER -> record.headers.getOrDefault(spec.name(), "");
            case JSON_FIELD -> jsonField(record.payload, spec.name());
        };
    }

    private static String jsonField(byte[] payload, String field) throws IOException {
        String value = JsonFields.topLevelScalar(payload, field);
        return value == null ? "" : value;
    }
}
