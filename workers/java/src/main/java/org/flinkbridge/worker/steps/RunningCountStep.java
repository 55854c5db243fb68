package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.StateStrings;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code running_count}: counts records per key ({@code key_header} or {@code key_json_field}) and emits, for
 * every record, {@code {"key": K, "count": N}} (with a {@code key} header), N being how many records of K it
 * has seen, this one included. The counts are the step's state, so with exactly-once delivery each key's
 * counts come out as 1, 2, 3, ... with no gap and no repeat, across failures and restores.
 */
final class RunningCountStep implements Step {

    private static final ObjectMapper JSON = new ObjectMapper();

    private RecordField key;
    /** In the order keys came: the order of the state's entries, as the Python and Rust workers write them. */
    private final Map<String, Long> counts = new LinkedHashMap<>();

    @Override
    public void open(StepContext context) {
        key = RecordField.fromConfig(context, "key_", true);
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        String value = key.read(input);
        if (value == null) {
            throw new IOException("the record has no key to count by");
        }
        long count = counts.merge(value, 1L, Long::sum);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("key", value);
        result.put("count", count);
        output.emit(new Record(JSON.writeValueAsBytes(result), Map.of("key", value), input.timestamp()));
    }

    @Override
    public byte[] snapshotState() throws IOException {
        if (counts.isEmpty()) {
            return new byte[0];
        }
        return CountsState.write(counts, StateStrings::write);
    }

    @Override
    public void restoreState(byte[] state) throws IOException {
        CountsState.read(state, counts, StateStrings::read, "running_count");
    }
}
