package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.StateStrings;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.TimeDomain;

import java.io.IOException;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code count}: counts records per key in tumbling event-time windows of {@code window_ms}, and emits
 * {@code {"key","window_start","window_end","count"}} once the watermark passes a window's end. In a session that is
 * not keyed the open windows are the step's whole-instance state, emitted by watermarks.
 *
 * <p>In a keyed session (protocol 6) it runs on the {@code window} step's cells and timers ({@link
 * WindowStep#openForCount}): map cell {@value WindowStep#WINDOWS}, entry key the window start (i64 big-endian) then
 * the key (UTF-8), value the count (i64 little-endian), and an event-time timer at each window's end - 1, whose firing
 * emits the key's windows ending there. It keeps no whole-instance state there, and refuses whole-instance state
 * holding open windows (a checkpoint taken before).
 */
final class CountStep implements Step {

    private static final ObjectMapper JSON = new ObjectMapper();

    private String stepName;
    /** The windows of a keyed session, in cells; null in one that is not keyed. */
    private final WindowStep cells;
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

    /** @param keyed the session is keyed: the windows go in cells, fired by timers */
    CountStep(boolean keyed) {
        cells = keyed ? new WindowStep() : null;
    }

    @Override
    public void open(StepContext context) {
        stepName = context.stepName();
        StepConfig config = new StepConfig(context);
        JsonNode window = context.config().get("window_ms");
        if (window == null || window.isNull()) {
            throw config.invalid("window_ms", "a whole number >= 1", context.config().path("window_ms"));
        }
        windowMillis = config.positiveLong("window_ms", 0);
        key = RecordField.fromConfig(context, "key_", false);
        if (cells != null) {
            cells.openForCount(context, windowMillis, key);
        }
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        if (cells != null) {
            cells.process(input, output);
            return;
        }
        String value = key == null ? "" : key.read(input);
        long start = input.timestamp() - Math.floorMod(input.timestamp(), windowMillis);
        counts.merge(new WindowKey(start, value == null ? "" : value), 1L, Long::sum);
    }

    @Override
    public void onTimer(long timestamp, TimeDomain domain, Emitter output) throws IOException {
        if (cells != null) {
            cells.onTimer(timestamp, domain, output);
        }
    }

    @Override
    public void onWatermark(long timestamp, Emitter output) throws IOException {
        if (cells != null) {
            return;  // the timers fire the windows
        }
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
        if (cells != null) {
            return new byte[0];
        }
        return CountsState.write(counts, (out, window) -> {
            out.writeLong(window.start());
            StateStrings.write(out, window.key());
        });
    }

    @Override
    public void restoreState(byte[] state) throws IOException {
        CountsState.read(state, counts, in -> new WindowKey(in.readLong(), StateStrings.read(in)), "count");
        if (cells != null && !counts.isEmpty()) {
            int open = counts.size();
            counts.clear();
            throw new IOException("step '" + stepName + "' (count) is given " + open + " open windows as whole-instance"
                    + " state, a checkpoint taken before count kept its windows in cells: in a keyed session they live"
                    + " in map cell '" + WindowStep.WINDOWS + "' per key, so such a checkpoint cannot be restored into"
                    + " it; its counts would be lost");
        }
    }
}
