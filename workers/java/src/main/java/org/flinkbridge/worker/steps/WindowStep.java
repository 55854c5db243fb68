package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.sdk.Timers;
import org.flinkbridge.worker.sdk.ValueCell;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code window}: per-key tumbling or sliding event-time windows with an aggregate, on cells and timers (a keyed
 * segment only, protocol 6; docs/steps.md). Each record adds to every window {@code [start, start + size_ms)} holding
 * its timestamp ({@code start} a multiple of {@code slide_ms}) and sets an event-time timer at
 * {@code end - 1 + allowed_lateness_ms}; when that fires, each of the key's windows ending there is emitted once,
 * {@code {"key": K, "window_start": S, "window_end": E, "<aggregate>": V}}, and dropped. A record whose every window
 * already fired for its key is emitted as it came, with the header {@code late} naming the step.
 *
 * <p>State: map cell {@value #WINDOWS}, entry key the window start (i64 big-endian) then K (UTF-8), value the
 * aggregate (i64 little-endian); value cell {@value #FIRED_UNTIL}, the timestamp of the key's last firing (i64
 * little-endian).
 *
 * <p>{@code count} runs on it in a keyed session ({@link #openForCount}): tumbling windows, aggregate count, K
 * optional, and no late records, so no {@value #FIRED_UNTIL}.
 */
final class WindowStep implements Step {

    static final String WINDOWS = "windows";
    static final String FIRED_UNTIL = "fired_until";
    /** The header a late record is emitted with, its value the step's name. */
    static final String LATE_HEADER = "late";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonFactory FIELDS = new JsonFactory();

    private enum Aggregate { COUNT, SUM, MIN, MAX }

    private String stepName;
    /** The step's type, as its errors name it: window, or count ({@link #openForCount}). */
    private String type = "window";
    /** Null for count: K is "" when it is not configured or the record has none. */
    private RecordField key;
    private long size;
    private long slide;
    private long lateness;
    private Aggregate aggregate;
    private String aggregateName;
    private String field;
    private MapCell windows;
    /** Null for count, which has no late records: a record adds to its window whether or not it fired. */
    private ValueCell firedUntil;
    private Timers timers;

    @Override
    public void open(StepContext context) {
        stepName = context.stepName();
        StepConfig config = new StepConfig(context);
        key = RecordField.fromConfig(context, "key_", true);
        JsonNode sizeNode = context.config().get("size_ms");
        if (sizeNode == null || sizeNode.isNull()) {
            throw config.invalid("size_ms", "a whole number >= 1", context.config().path("size_ms"));
        }
        size = config.positiveLong("size_ms", 0);
        slide = config.positiveLong("slide_ms", size);
        if (slide > size) {
            throw config.invalid("slide_ms", "at most size_ms (" + size + ")", context.config().get("slide_ms"));
        }
        lateness = config.nonNegativeLong("allowed_lateness_ms", 0);
        aggregateName = config.string("aggregate", "count");
        aggregate = switch (aggregateName) {
            case "count" -> Aggregate.COUNT;
            case "sum" -> Aggregate.SUM;
            case "min" -> Aggregate.MIN;
            case "max" -> Aggregate.MAX;
            default -> throw config.invalid("aggregate", "one of count, sum, min, max",
                    context.config().get("aggregate"));
        };
        field = config.string("field", null);
        if (field == null && aggregate != Aggregate.COUNT) {
            throw new IllegalArgumentException("step '" + stepName + "': config field is required for aggregate "
                    + aggregateName + ": the top-level JSON field whose integers it takes");
        }
        windows = context.mapCell(WINDOWS);
        firedUntil = context.valueCell(FIRED_UNTIL);
        timers = context.timers();
    }

    /**
     * Opens it as {@code count} runs in a keyed session: tumbling windows of {@code size} ms counting records, K the
     * value of {@code key} ("" when it is null or the record has none), no {@value #FIRED_UNTIL} and no late records.
     * A record behind the watermark adds to its window (again, if it fired) and sets its timer, which the bridge fires
     * at the next watermark: what {@code count} did with its whole-instance windows.
     */
    void openForCount(StepContext context, long size, RecordField key) {
        stepName = context.stepName();
        type = "count";
        this.key = key;
        this.size = size;
        slide = size;
        aggregate = Aggregate.COUNT;
        aggregateName = "count";
        windows = context.mapCell(WINDOWS);
        timers = context.timers();
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        String k = key == null ? null : key.read(input);
        if (k == null && firedUntil != null) {
            throw new IOException("the record has no key to window by");
        } else if (k == null) {
            k = "";  // count's: no key configured, or the record has none
        }
        long value = aggregate == Aggregate.COUNT ? 1 : integerField(input.payload());
        long t = input.timestamp();
        byte[] fired = firedUntil == null ? null : firedUntil.get();
        long until = fired == null ? 0 : readLong(fired, FIRED_UNTIL, k);
        byte[] keyBytes = k.getBytes(StandardCharsets.UTF_8);
        boolean added = false;
        try {
            // The windows holding t start at the multiples of slide in (t - size, t]: earliest first.
            long offset = Math.floorMod(t, slide);
            long last = t - offset;
            for (long before = (size - 1 - offset) / slide; before >= 0; before--) {
                long start = Math.subtractExact(last, before * slide);
                long fireAt = fireAt(Math.addExact(start, size));
                if (fired != null && fireAt <= until) {
                    continue;
                }
                add(start, keyBytes, k, value);
                timers.setEventTime(fireAt);
                added = true;
            }
        } catch (ArithmeticException e) {
            throw new IOException("the record's timestamp " + t + " has windows of " + size + " ms outside the "
                    + "64-bit range of time", e);
        }
        if (!added) {
            Map<String, String> headers = new HashMap<>(input.headers());
            headers.put(LATE_HEADER, stepName);
            output.emit(new Record(input.payload(), headers, t));
        }
    }

    /** When the window ending at {@code end} fires: end - 1 + allowed lateness, at most the end of time. */
    private long fireAt(long end) {
        long at = end - 1 + lateness;
        return at < end - 1 ? Long.MAX_VALUE : at;
    }

    /** Adds {@code value} to the aggregate of K's window at {@code start}. */
    private void add(long start, byte[] keyBytes, String k, long value) throws IOException {
        byte[] entry = ByteBuffer.allocate(Long.BYTES + keyBytes.length).putLong(start).put(keyBytes).array();
        byte[] held = windows.get(entry);
        long next;
        if (held == null) {
            next = value;
        } else {
            long now = readLong(held, WINDOWS, k);
            next = switch (aggregate) {
                case COUNT, SUM -> {
                    try {
                        yield Math.addExact(now, value);
                    } catch (ArithmeticException e) {
                        throw new IOException("the " + aggregateName + " of key '" + k + "' in the window starting at "
                                + start + " overflows 64 bits: " + now + " + " + value, e);
                    }
                }
                case MIN -> Math.min(now, value);
                case MAX -> Math.max(now, value);
            };
        }
        windows.put(entry, longBytes(next));
    }

    @Override
    public void onTimer(long timestamp, TimeDomain domain, Emitter output) throws IOException {
        if (domain != TimeDomain.EVENT_TIME) {
            return;
        }
        List<byte[]> done = new ArrayList<>();
        List<Long> values = new ArrayList<>();
        IOException[] broken = {null};
        windows.forEach((entry, value) -> {
            if (entry.length < Long.BYTES || broken[0] != null) {
                return;
            }
            long start = ByteBuffer.wrap(entry).getLong();
            if (start > Long.MAX_VALUE - size || fireAt(start + size) != timestamp) {
                return;
            }
            try {
                values.add(readLong(value, WINDOWS, new String(entry, Long.BYTES, entry.length - Long.BYTES,
                        StandardCharsets.UTF_8)));
                done.add(entry);
            } catch (IOException e) {
                broken[0] = e;
            }
        });
        if (broken[0] != null) {
            throw broken[0];
        }
        for (int i = 0; i < done.size(); i++) {
            byte[] entry = done.get(i);
            long start = ByteBuffer.wrap(entry).getLong();
            String k = new String(entry, Long.BYTES, entry.length - Long.BYTES, StandardCharsets.UTF_8);
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("key", k);
            result.put("window_start", start);
            result.put("window_end", start + size);
            result.put(aggregateName, values.get(i));
            output.emit(new Record(JSON.writeValueAsBytes(result), Map.of("key", k), start + size - 1));
            windows.remove(entry);
        }
        if (firedUntil == null) {
            return;
        }
        byte[] fired = firedUntil.get();
        if (fired == null || readLong(fired, FIRED_UNTIL, null) < timestamp) {
            firedUntil.set(longBytes(timestamp));
        }
    }

    /** The integer of the record's {@code field}: a top-level JSON field holding an integer that fits 64 bits. */
    private long integerField(byte[] payload) throws IOException {
        try (JsonParser parser = FIELDS.createParser(payload)) {
            if (parser.nextToken() == JsonToken.START_OBJECT) {
                while (parser.nextToken() == JsonToken.FIELD_NAME) {
                    boolean wanted = field.equals(parser.currentName());
                    JsonToken value = parser.nextToken();
                    if (!wanted) {
                        parser.skipChildren();
                        continue;
                    }
                    if (value == JsonToken.VALUE_NUMBER_INT
                            && parser.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
                        return parser.getLongValue();
                    }
                    throw new IOException("field '" + field + "' of the record is " + (value == JsonToken.VALUE_NUMBER_INT
                            ? parser.getText() + ", which does not fit 64 bits" : describe(value, parser))
                            + ": the " + aggregateName + " takes integers");
                }
            }
        } catch (JsonParseException notJson) {
            // No JSON object: the field is missing.
        }
        throw new IOException("the record has no field '" + field + "' (a top-level JSON field) to "
                + aggregateName.toLowerCase(Locale.ROOT));
    }

    private static String describe(JsonToken value, JsonParser parser) throws IOException {
        return value.isScalarValue() ? "not an integer (" + parser.getText() + ")" : "not an integer";
    }

    private long readLong(byte[] held, String cell, String k) throws IOException {
        if (held.length != Long.BYTES) {
            throw new IOException("step '" + stepName + "' (" + type + "): cell '" + cell + "' holds " + held.length
                    + " bytes" + (k == null ? "" : " for key '" + k + "'") + ", not an i64 (8 bytes, little-endian)");
        }
        return ByteBuffer.wrap(held).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private static byte[] longBytes(long value) {
        return ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array();
    }
}
