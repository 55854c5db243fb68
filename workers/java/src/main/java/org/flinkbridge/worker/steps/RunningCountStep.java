package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.StateStrings;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code running_count}: counts records per key ({@code key_header} or {@code key_json_field}) and emits, for
 * every record, {@code {"key": K, "count": N}} (with a {@code key} header), N being how many records of K it
 * has seen, this one included. The counts are the step's state, so with exactly-once delivery each key's
 * counts come out as 1, 2, 3, ... with no gap and no repeat, across failures and restores.
 *
 * <p>In a keyed session (protocol 5) the counts live in cells: one map cell {@value #CELL}, no TTL, whose entry of
 * a key (its UTF-8 bytes) holds its count as an 8-byte little-endian signed integer; the step then keeps no
 * whole-instance state. In a session that is not keyed they are its whole-instance state ({@link CountsState}).
 */
final class RunningCountStep implements Step {

    /** The map cell that holds the counts in a keyed session. */
    static final String CELL = "counts";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Whether the session is keyed: the counts are in {@link #cellCounts}, not in {@link #counts}. */
    private final boolean keyed;
    private String stepName;
    private RecordField key;
    /** In the order keys came: the order of the state's entries, as the Python and Rust workers write them. */
    private final Map<String, Long> counts = new LinkedHashMap<>();
    /** The counts of a keyed session; null in one that is not. */
    private MapCell cellCounts;

    /** @param keyed the session is keyed: the counts go in a map cell */
    RunningCountStep(boolean keyed) {
        this.keyed = keyed;
    }

    @Override
    public void open(StepContext context) {
        stepName = context.stepName();
        key = RecordField.fromConfig(context, "key_", true);
        if (keyed) {
            cellCounts = context.mapCell(CELL);
        }
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        String value = key.read(input);
        if (value == null) {
            throw new IOException("the record has no key to count by");
        }
        long count = keyed ? countInCell(value) : counts.merge(value, 1L, Long::sum);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("key", value);
        result.put("count", count);
        output.emit(new Record(JSON.writeValueAsBytes(result), Map.of("key", value), input.timestamp()));
    }

    /** Counts a record of {@code value} in the map cell: its new count. */
    private long countInCell(String value) throws IOException {
        byte[] entry = value.getBytes(StandardCharsets.UTF_8);
        byte[] held = cellCounts.get(entry);
        long count;
        if (held == null) {
            count = 1;
        } else if (held.length != Long.BYTES) {
            throw new IOException("step '" + stepName + "' (running_count): cell '" + CELL + "' holds " + held.length
                    + " bytes for key '" + value + "', not a count (8 bytes, little-endian)");
        } else {
            count = ByteBuffer.wrap(held).order(ByteOrder.LITTLE_ENDIAN).getLong() + 1;
        }
        cellCounts.put(entry, ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(count).array());
        return count;
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
        if (keyed) {
            if (state.length > 0) {
                throw new IOException("step '" + stepName + "' (running_count) is given " + state.length + " bytes of"
                        + " whole-instance state, a checkpoint taken before protocol 5: in a keyed session its counts"
                        + " live in cells (map cell '" + CELL + "') since protocol 5, so such a checkpoint cannot be"
                        + " restored into it; its counts would be lost");
            }
            return;
        }
        CountsState.read(state, counts, StateStrings::read, "running_count");
    }
}
