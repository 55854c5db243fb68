package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/** A user step, loaded by class name in the tests. */
public class UppercaseStep implements Step {
    @Override
    public void process(Record input, Emitter output) {
        String text = new String(input.payload(), StandardCharsets.UTF_8).toUpperCase(Locale.ROOT);
        output.emit(input.withPayload(text.getBytes(StandardCharsets.UTF_8)));
    }
}
