package org.flinkbridge.protocol;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;

import java.io.IOException;

/**
 * Reads one top-level field of a JSON object payload, as pipeline files name them ({@code json_field}),
 * with a streaming parser that builds no tree and stops at the field.
 */
public final class JsonFields {

    private static final JsonFactory JSON = new JsonFactory();

    private JsonFields() {}

    /** The field's text if it is a scalar (not null); null when missing or the payload is no JSON object. */
    public static String topLevelScalar(byte[] payload, String field) throws IOException {
        try (JsonParser parser = JSON.createParser(payload)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                boolean wanted = field.equals(parser.currentName());
                JsonToken value = parser.nextToken();
                if (wanted) {
                    return value.isScalarValue() && value != JsonToken.VALUE_NULL ? parser.getText() : null;
                }
                parser.skipChildren();
            }
            return null;
        } catch (JsonParseException notJson) {
            return null;
        }
    }
}
