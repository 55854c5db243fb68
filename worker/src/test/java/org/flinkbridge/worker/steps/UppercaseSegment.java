package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Segment;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/** A user segment, loaded by class name in the tests. */
public class UppercaseSegment implements Segment {
    @Override
    public void process(Record input, Emitter output) {
        String text = new String(input.payload(), StandardCharsets.UTF_8).toUpperCase(Locale.ROOT);
        output.emit(input.withPayload(text.getBytes(StandardCharsets.UTF_8)));
    }
}
