package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.ValueCell;

import java.nio.charset.StandardCharsets;
import java.time.Duration;

/** Emits the key's previous payload ({@code previous=P}, or {@code previous=none}), kept for 100 ms in a cell. */
public class LastSeenStep implements Step {
    private ValueCell last;

    @Override
    public void open(StepContext context) {
        last = context.valueCell("last", Duration.ofMillis(100));
    }

    @Override
    public void process(Record input, Emitter output) {
        byte[] previous = last.get();
        last.set(input.payload());
        output.emit(input.withPayload(("previous=" + (previous == null ? "none"
                : new String(previous, StandardCharsets.UTF_8))).getBytes(StandardCharsets.UTF_8)));
    }
}
