package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.ValueCell;

import static java.nio.charset.StandardCharsets.UTF_8;

/** docs/steps.md's example of a cell: a per-key total of the numbers in the payloads, emitted after each. */
public class TotalStep implements Step {
    private ValueCell total;

    @Override public void open(StepContext context) { total = context.valueCell("total"); }

    @Override public void process(Record input, Emitter output) {
        byte[] now = total.get();  // null: this key has no total yet
        long sum = (now == null ? 0 : Long.parseLong(new String(now, UTF_8)))
                + Long.parseLong(new String(input.payload(), UTF_8));
        total.set(Long.toString(sum).getBytes(UTF_8));
        output.emit(input.withPayload(total.get()));
    }
}
