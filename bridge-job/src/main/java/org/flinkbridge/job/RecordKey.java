package org.flinkbridge.job;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.api.java.functions.KeySelector;
import org.flinkbridge.pipeline.KeySpec;

import java.io.IOException;

/**
 * The key a record is partitioned by: a header, or a top-level field of a JSON payload (read with a
 * streaming parser, without building a tree). A record without it gets the empty key, so it is still
 * processed, all such records by one subtask.
 */
public final class RecordKey implements KeySelector<BridgeRecord, String> {

    private static final JsonFactory JSON = new JsonFactory();

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
        try (JsonParser parser = JSON.createParser(payload)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return "";
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                boolean wanted = field.equals(parser.currentName());
                JsonToken value = parser.nextToken();
                if (wanted) {
                    return value.isScalarValue() ? parser.getText() : "";
                }
                parser.skipChildren();
            }
            return "";
        } catch (com.fasterxml.jackson.core.JsonParseException e) {
            return "";
        }
    }
}
