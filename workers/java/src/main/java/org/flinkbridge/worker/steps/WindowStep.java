package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.BuiltInStep;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.sdk.Timers;
import org.flinkbridge.worker.sdk.ValueCell;
import org.flinkbridge.worker.sdk.WindowAggregate;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code window}: per-key tumbling or sliding event-time windows with an aggregate, on cells and timers (a keyed
 * segment only, protocol 6; docs/steps.md). Each record adds to every window {@code [start, start + size_ms)} holding
 * its timestamp ({@code start} a multiple of {@code slide_ms}) and sets an event-time timer at
 * {@code end - 1 + allowed_lateness_ms}; when that fires, each of the key's windows ending there is emitted once,
 * {@code {"key": K, "window_start": S, "window_end": E, "<aggregate>": V}}, and dropped. A record whose every window
 * already fired for its key is emitted as it came, with the header {@link BuiltInStep#LATE_HEADER} naming the step.
 *
 * <p>State: map cell {@value #WINDOWS}, entry key the window start (i64 big-endian) then K (UTF-8), value the
 * aggregate (i64 little-endian); value cell {@value #FIRED_UNTIL}, the timestamp of the key's last firing (i64
 * little-endian).
 *
 * <p>A user aggregate ({@link WindowAggregate}, {@code aggregate} a class name with dots) keeps an accumulator per
 * <em>pane</em> instead, the slice of gcd(size_ms, slide_ms) ms a record falls in, so a record is added once: entry
 * key the pane start (i64 big-endian) then K, value the accumulator's bytes. A window fires with the merge of its
 * panes' accumulators in pane order (one pane: its accumulator as it is) given to {@code result}, as the field
 * {@code result}; a pane is dropped once the last window holding it fired.
 *
 * <p>{@code count} runs on it in a keyed session ({@link #openForCount}): tumbling windows, aggregate count, K
 * optional, and no late records, so no {@value #FIRED_UNTIL}.
 */
final class WindowStep implements Step {

    static final String WINDOWS = "windows";
    static final String FIRED_UNTIL = "fired_until";
    /** The output field of a user aggregate's result. */
    static final String RESULT = "result";

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
    /** Null for a user aggregate. */
    private Aggregate aggregate;
    /** The output field of the aggregate: count, sum, min, max, or result for a user aggregate. */
    private String aggregateName;
    /** The user aggregate, or null for a built-in one. */
    private WindowAggregate user;
    /** The user aggregate's class name, as errors name it. */
    private String userClass;
    /** The length of a user aggregate's panes: gcd(size, slide). */
    private long pane;
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
        if (aggregateName.contains(".")) {
            JsonNode fieldNode = context.config().get("field");
            if (fieldNode != null && !fieldNode.isNull()) {
                throw new IllegalArgumentException("step '" + stepName + "': config field is not used with a user "
                        + "aggregate (" + aggregateName + "), whose add() is given the whole record");
            }
            userClass = aggregateName;
            aggregateName = RESULT;
            pane = gcd(size, slide);
            user = StepFactory.userInstance(stepName, "aggregate class", userClass, WindowAggregate.class);
        } else {
            aggregate = switch (aggregateName) {
                case "count" -> Aggregate.COUNT;
                case "sum" -> Aggregate.SUM;
                case "min" -> Aggregate.MIN;
                case "max" -> Aggregate.MAX;
                default -> throw config.invalid("aggregate", "one of count, sum, min, max or a user class (a name "
                        + "with a dot)", context.config().get("aggregate"));
            };
            field = config.string("field", null);
            if (field == null && aggregate != Aggregate.COUNT) {
                throw new IllegalArgumentException("step '" + stepName + "': config field is required for aggregate "
                        + aggregateName + ": the top-level JSON field whose integers it takes");
            }
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
        long value = aggregate == null || aggregate == Aggregate.COUNT ? 1 : integerField(input.payload());
        long t = input.timestamp();
        byte[] fired = firedUntil == null ? null : firedUntil.get();
        long until = fired == null ? 0 : readLong(fired, FIRED_UNTIL, k);
        byte[] keyBytes = k.getBytes(StandardCharsets.UTF_8);
        boolean added = false;
        // A user aggregate's: when the record's open windows fire, their timers set once its pane took the record.
        List<Long> userFirings = user == null ? null : new ArrayList<>();
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
                if (user == null) {
                    add(start, keyBytes, k, value);
                    timers.setEventTime(fireAt);
                } else {
                    userFirings.add(fireAt);
                }
                added = true;
            }
        } catch (ArithmeticException e) {
            throw new IOException("the record's timestamp " + t + " has windows of " + size + " ms outside the "
                    + "64-bit range of time", e);
        }
        if (!added) {
            Map<String, String> headers = new HashMap<>(input.headers());
            headers.put(BuiltInStep.LATE_HEADER, stepName);
            output.emit(new Record(input.payload(), headers, t));
        } else if (user != null) {
            addToPane(input, keyBytes);
            userFirings.forEach(timers::setEventTime);
        }
    }

    /** Adds the record to the accumulator of its pane and K, by the user aggregate. */
    private void addToPane(Record input, byte[] keyBytes) throws IOException {
        long t = input.timestamp();
        byte[] entry = entry(t - Math.floorMod(t, pane), keyBytes);
        byte[] held = windows.get(entry);
        byte[] next;
        try {
            // A copy: the aggregate may change it in place, the cell's own array may not be.
            next = user.add(held == null ? null : held.clone(), input);
        } catch (Exception e) {
            throw failed("add", e);
        }
        windows.put(entry, accumulator(next, "add"));
    }

    /** The failure of the user aggregate's {@code method}, naming the step and the class. */
    private IOException failed(String method, Exception e) {
        return new IOException("step '" + stepName + "': aggregate " + userClass + " failed in " + method + "(): "
                + e, e);
    }

    /** What the user aggregate's {@code method} returned, an accumulator: not null. */
    private byte[] accumulator(byte[] returned, String method) throws IOException {
        if (returned == null) {
            throw new IOException("step '" + stepName + "': aggregate " + userClass + ": " + method
                    + "() returned null, not an accumulator (bytes)");
        }
        return returned;
    }

    private static byte[] entry(long start, byte[] keyBytes) {
        return ByteBuffer.allocate(Long.BYTES + keyBytes.length).putLong(start).put(keyBytes).array();
    }

    private static long gcd(long a, long b) {
        return b == 0 ? a : gcd(b, a % b);
    }

    /** When the window ending at {@code end} fires: end - 1 + allowed lateness, at most the end of time. */
    private long fireAt(long end) {
        long at = end - 1 + lateness;
        return at < end - 1 ? Long.MAX_VALUE : at;
    }

    /** Adds {@code value} to the aggregate of K's window at {@code start}. */
    private void add(long start, byte[] keyBytes, String k, long value) throws IOException {
        byte[] entry = entry(start, keyBytes);
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
        if (user != null) {
            fireUser(timestamp, output);
        } else {
            fireBuiltIn(timestamp, output);
        }
        if (firedUntil == null) {
            return;
        }
        byte[] fired = firedUntil.get();
        if (fired == null || readLong(fired, FIRED_UNTIL, null) < timestamp) {
            firedUntil.set(longBytes(timestamp));
        }
    }

    /** Emits and drops each of the key's windows whose timer is at {@code timestamp}. */
    private void fireBuiltIn(long timestamp, Emitter output) throws IOException {
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
            emitWindow(new String(entry, Long.BYTES, entry.length - Long.BYTES, StandardCharsets.UTF_8),
                    ByteBuffer.wrap(entry).getLong(), values.get(i), output);
            windows.remove(entry);
        }
    }

    /**
     * A user aggregate's firing: each window of the key whose timer is at {@code timestamp}, for each K with a pane in
     * it, is emitted with the result of its panes' merged accumulators (in order of window start, then of K's UTF-8
     * bytes); then the panes whose last window has fired are dropped.
     */
    private void fireUser(long timestamp, Emitter output) throws IOException {
        // The starts of the windows firing now: the one whose end - 1 + lateness is the timestamp, or at the end of
        // time, every one whose firing is past it (fireAt).
        long windowsFrom;
        long windowsTo;
        if (timestamp == Long.MAX_VALUE) {
            windowsFrom = Long.MAX_VALUE - lateness - size + 1;
            windowsTo = Long.MAX_VALUE - size;
        } else {
            try {
                windowsFrom = windowsTo = Math.subtractExact(Math.subtractExact(timestamp + 1, lateness), size);
            } catch (ArithmeticException beforeTime) {
                return;
            }
        }
        long lowest = windowsFrom;
        long highest = windowsTo;
        // Window start -> K (UTF-8, in unsigned byte order) -> pane start -> accumulator.
        TreeMap<Long, TreeMap<byte[], TreeMap<Long, byte[]>>> firing = new TreeMap<>();
        List<byte[]> spent = new ArrayList<>();
        windows.forEach((entry, accumulator) -> {
            if (entry.length < Long.BYTES) {
                return;
            }
            long paneStart = ByteBuffer.wrap(entry).getLong();
            long offset = Math.floorMod(paneStart, slide);
            long last = paneStart - offset;
            long first;
            try {
                first = Math.subtractExact(last, (size - 1 - offset) / slide * slide);
            } catch (ArithmeticException beforeTime) {
                first = Long.MIN_VALUE;
            }
            // The windows of the pane (those of its start) that fire now: starts in [from, to], multiples of slide.
            long from = Math.max(first, lowest);
            long to = Math.min(last, highest);
            long misaligned = Math.floorMod(from, slide);
            if (misaligned != 0) {
                from = to - from < slide - misaligned ? Long.MAX_VALUE : from + slide - misaligned;
            }
            byte[] keyBytes = Arrays.copyOfRange(entry, Long.BYTES, entry.length);
            for (long start = from; start <= to; start += slide) {
                firing.computeIfAbsent(start, s -> new TreeMap<>(Arrays::compareUnsigned))
                        .computeIfAbsent(keyBytes, kb -> new TreeMap<>())
                        .put(paneStart, accumulator);
            }
            if (last > Long.MAX_VALUE - size || fireAt(last + size) <= timestamp) {
                spent.add(entry);
            }
        });
        for (Map.Entry<Long, TreeMap<byte[], TreeMap<Long, byte[]>>> window : firing.entrySet()) {
            long start = window.getKey();
            for (Map.Entry<byte[], TreeMap<Long, byte[]>> panes : window.getValue().entrySet()) {
                String k = new String(panes.getKey(), StandardCharsets.UTF_8);
                byte[] merged = null;
                for (byte[] accumulator : panes.getValue().values()) {
                    // Copies: the aggregate may change them in place, the cell's own arrays may not be.
                    if (merged == null) {
                        merged = accumulator.clone();
                        continue;
                    }
                    try {
                        merged = user.merge(merged, accumulator.clone());
                    } catch (Exception e) {
                        throw failed("merge", e);
                    }
                    accumulator(merged, "merge");
                }
                Object value;
                try {
                    value = user.result(merged);
                } catch (Exception e) {
                    throw failed("result", e);
                }
                emitWindow(k, start, value, output);
            }
        }
        spent.forEach(windows::remove);
    }

    /**
     * Emits K's window at {@code start}: {@code {"key": K, "window_start": S, "window_end": E, "<aggregate>": V}},
     * header {@code key}, timestamp E - 1. Only a user aggregate's value can fail to be written as JSON.
     */
    private void emitWindow(String k, long start, Object value, Emitter output) throws IOException {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("key", k);
        result.put("window_start", start);
        result.put("window_end", start + size);
        result.put(aggregateName, value);
        byte[] payload;
        try {
            payload = JSON.writeValueAsBytes(result);
        } catch (JsonProcessingException e) {
            throw new IOException("step '" + stepName + "': aggregate " + userClass + ": result() returned "
                    + (value == null ? "null" : "a " + value.getClass().getName())
                    + ", which cannot be written as JSON: " + e.getOriginalMessage(), e);
        }
        output.emit(new Record(payload, Map.of("key", k), start + size - 1));
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
