package org.flinkbridge.worker.steps;

import org.flinkbridge.protocol.JsonFields;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.StepContext;

import java.io.IOException;

/**
 * A value read from a record: a header ({@code <prefix>header}) or a top-level JSON field
 * ({@code <prefix>json_field}), as a step's config names it. Missing, or a payload that is not a JSON
 * object, reads as null.
 */
final class RecordField {

    private final String header;
    private final String jsonField;

    private RecordField(String header, String jsonField) {
        this.header = header;
        this.jsonField = jsonField;
    }

    /** The field the config names with {@code <prefix>header} or {@code <prefix>json_field}; null if neither. */
    static RecordField fromConfig(StepContext context, String prefix, boolean required) {
        StepConfig config = new StepConfig(context);
        String header = config.string(prefix + "header", null);
        String jsonField = config.string(prefix + "json_field", null);
        if (header != null && jsonField != null) {
            throw new IllegalArgumentException("step '" + context.stepName() + "': give " + prefix + "header or "
                    + prefix + "json_field, not both");
        }
        if (header == null && jsonField == null) {
            if (required) {
                throw new IllegalArgumentException("step '" + context.stepName() + "': config needs "
                        + prefix + "header or " + prefix + "json_field");
            }
            return null;
        }
        return new RecordField(header, jsonField);
    }

    String read(Record record) throws IOException {
        if (header != null) {
            return record.headers().get(header);
        }
        return JsonFields.topLevelScalar(record.payload(), jsonField);
    }
}
