package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.StateStrings;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

import java.io.IOException;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code count}: counts records per key in tumbling event-time windows of {@code window_ms}, and emits
 * {@code {"key","window_start","window_end","count"}} once the watermark passes a window's end. The open
 * windows are the step's state.
 */
final class CountStep implements Step {

    private static final ObjectMapper JSON = new ObjectMapper();

    private long windowMillis;
    private RecordField key;
    /** Open windows by (window start, key): the order they are emitted in. */
    private final TreeMap<WindowKey, Long> counts = new TreeMap<>();

    private record WindowKey(long start, String key) implements Comparable<WindowKey> {
        @Override
        public int compareTo(WindowKey other) {
            int byStart = Long.compare(start, other.start);
            return byStart != 0 ? byStart : key.compareTo(other.key);
        }
    }

    @Override
    public void open(StepContext context) {
        StepConfig config = new StepConfig(context);
        JsonNode window = context.config().get("window_ms");
        if (window == null || window.isNull()) {
            throw config.invalid("window_ms", "a whole number >= 1", context.config().path("window_ms"));
        }
        windowMillis = config.positiveLong("window_ms", 0);
        key = RecordField.fromConfig(context, "key_", false);
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        String value = key == null ? "" : key.read(input);
        long start = input.timestamp() - Math.floorMod(input.timestamp(), windowMillis);
        counts.merge(new WindowKey(start, value == null ? "" : value), 1L, Long::sum);
    }

    @Override
    public void onWatermark(long timestamp, Emitter output) throws IOException {
        Iterator<Map.Entry<WindowKey, Long>> open = counts.entrySet().iterator();
        while (open.hasNext()) {
            Map.Entry<WindowKey, Long> window = open.next();
            long end = window.getKey().start() + windowMillis;
            if (end > timestamp && timestamp != Long.MAX_VALUE) {
                break;
            }
            Map<String, Object> result = new java.util.LinkedHashMap<>();
            result.put("key", window.getKey().key());
            result.put("window_start", window.getKey().start());
            result.put("window_end", end);
            result.put("count", window.getValue());
            output.emit(new Record(JSON.writeValueAsBytes(result), Map.of("key", window.getKey().key()), end - 1));
            open.remove();
        }
    }

    @Override
    public byte[] snapshotState() throws IOException {
        return CountsState.write(counts, (out, window) -> {
            out.writeLong(window.start());
            StateStrings.write(out, window.key());
        });
    }

    @Override
    public void restoreState(byte[] state) throws IOException {
        CountsState.read(state, counts, in -> new WindowKey(in.readLong(), StateStrings.read(in)), "count");
    }
}
