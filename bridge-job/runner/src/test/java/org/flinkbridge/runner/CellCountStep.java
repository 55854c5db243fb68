package org.flinkbridge.runner;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.ValueCell;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A user step keeping its state in cells: per key, a count in a value cell and the ids seen in a map cell; emits
 * {@code {"key":K,"count":N,"ids":M}} for every record (cells_count.CellCount is the same in Python).
 */
public class CellCountStep implements Step {

    private static final Pattern ID = Pattern.compile("\"id\":(\\d+)");
    private static final Pattern KEY = Pattern.compile("\"key\":\"([^\"]*)\"");
    private ValueCell count;
    private MapCell ids;

    @Override
    public void open(StepContext context) {
        count = context.valueCell("count");
        ids = context.mapCell("ids");
    }

    @Override
    public void process(Record input, Emitter output) {
        String event = new String(input.payload(), StandardCharsets.UTF_8);
        byte[] before = count.get();
        long next = (before == null ? 0 : Long.parseLong(new String(before, StandardCharsets.UTF_8))) + 1;
        count.set(Long.toString(next).getBytes(StandardCharsets.UTF_8));
        ids.put(field(ID, event).getBytes(StandardCharsets.UTF_8), new byte[0]);
        AtomicInteger seen = new AtomicInteger();
        ids.forEach((id, nothing) -> seen.incrementAndGet());
        output.emit(new Record(("{\"key\":\"" + field(KEY, event) + "\",\"count\":" + next + ",\"ids\":" + seen
                + "}").getBytes(StandardCharsets.UTF_8), Map.of(), input.timestamp()));
    }

    private static String field(Pattern pattern, String event) {
        Matcher matcher = pattern.matcher(event);
        if (!matcher.find()) {
            throw new IllegalArgumentException("no " + pattern + " in " + event);
        }
        return matcher.group(1);
    }
}
