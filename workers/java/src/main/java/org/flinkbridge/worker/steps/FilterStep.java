package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

import java.io.IOException;

/**
 * {@code filter}: keeps the records whose header or JSON field equals {@code equals} ({@code negate: true}
 * keeps the others). A record without the field does not equal.
 */
final class FilterStep implements Step {

    private RecordField field;
    private String expected;
    private boolean negate;

    @Override
    public void open(StepContext context) {
        field = RecordField.fromConfig(context, "", true);
        StepConfig config = new StepConfig(context);
        expected = config.string("equals", null);
        if (expected == null) {
            throw config.invalid("equals", "a string", context.config().path("equals"));
        }
        negate = config.bool("negate", false);
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        if (expected.equals(field.read(input)) != negate) {
            output.emit(input);
        }
    }
}
