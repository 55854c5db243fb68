package org.flinkbridge.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The golden vectors of the built-in steps ({@value #RESOURCE}, beside this class): one description of what each
 * step gives for given inputs, which the Java, Python and Rust workers' tests and the conformance kit all replay.
 * The file's format is in docs/steps.md, "Golden vectors". Reading it needs jackson-databind, an optional
 * dependency of this module that every reader of the vectors has.
 */
public final class BuiltInStepVectors {

    public static final String RESOURCE = "builtin-steps.golden.json";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HexFormat HEX = HexFormat.of();

    private BuiltInStepVectors() {}

    /**
     * One vector: a step as {@code OpenSession} describes it, and the events of one or more sessions of it.
     *
     * @param openError  when not null, opening the step fails with a message containing it (and there are no events)
     * @param knownDrift worker ({@code java}, {@code python}, {@code rust}) to how it departs from this vector
     */
    public record Vector(String name, String stepName, String type, String configJson, String openError,
                         List<Event> events, Map<String, String> knownDrift) {

        /** Whether {@code worker} is known to give something else than this vector says. */
        public boolean driftsIn(String worker) {
            return knownDrift.containsKey(worker);
        }

        /** Null when opening the step went as this says ({@code actualError}: null when it opened), else how not. */
        public String openMismatch(String actualError) {
            return errorMismatch("opening the step", openError, actualError);
        }

        /**
         * Null when sessions of the step give what the events say, else the first difference: each event goes to
         * the session open, and a restore to a new one.
         */
        public String eventsMismatch(Sessions sessions) throws Exception {
            StepSession session = sessions.open();
            try {
                for (int i = 0; i < events.size(); i++) {
                    Event event = events.get(i);
                    String mismatch;
                    if (event instanceof RestoreEvent restore) {
                        session.close();
                        session = sessions.open();
                        mismatch = session.restore(restore);
                    } else {
                        mismatch = session.apply(event);
                    }
                    if (mismatch != null) {
                        return "event " + i + " (" + event.getClass().getSimpleName() + "): " + mismatch;
                    }
                }
                return null;
            } finally {
                session.close();
            }
        }
    }

    /** How a test opens a session of a vector's step: in a worker's own code, or over the wire. */
    @FunctionalInterface
    public interface Sessions {
        StepSession open() throws Exception;
    }

    /** A session of a vector's step as a test drives it; each call gives null when it went as the vector says. */
    public interface StepSession extends AutoCloseable {
        String apply(Event event) throws Exception;

        String restore(RestoreEvent restore) throws Exception;
    }

    /** What a session is sent, in order, with what it must give. */
    public sealed interface Event permits ClockEvent, RecordEvent, WatermarkEvent, CheckpointEvent, RestoreEvent {}

    /** The bridge's clock is now {@code millis} (a CLOCK input): the processing time steps read from here on. */
    public record ClockEvent(long millis) implements Event {}

    /** A record to the step instance of its key group ({@link KeyGroups#NONE}: a stream that is not keyed). */
    public record RecordEvent(byte[] payload, Map<String, String> headers, long timestamp, int keyGroup,
                              Expected expected) implements Event {}

    /** A watermark to every instance, in key group order; {@code Long.MAX_VALUE} ends the input. */
    public record WatermarkEvent(long timestamp, Expected expected) implements Event {}

    /**
     * A checkpoint: the state of every instance whose step holds any (by key group), which is exactly what the
     * step's snapshot gives. A worker returns each inside its segment's encoding ({@link #segmentState}).
     */
    public record CheckpointEvent(SortedMap<Integer, byte[]> states) implements Event {

        /** Null when {@code actual} (step states by key group) is what the vector says, else what differs. */
        public String mismatch(SortedMap<Integer, byte[]> actual) {
            return statesMismatch(states, actual);
        }

        /**
         * Null when {@code actual}, a one-step segment's states by key group as a worker returns them, holds the
         * step states the vector says, else what differs.
         */
        public String segmentMismatch(SortedMap<Integer, byte[]> actual) {
            SortedMap<Integer, byte[]> expected = new TreeMap<>();
            states.forEach((group, state) -> expected.put(group, segmentState(state)));
            return statesMismatch(expected, actual);
        }

        private static String statesMismatch(SortedMap<Integer, byte[]> expected, SortedMap<Integer, byte[]> actual) {
            if (actual.keySet().equals(expected.keySet()) && expected.keySet().stream()
                    .allMatch(group -> Arrays.equals(expected.get(group), actual.get(group)))) {
                return null;
            }
            return "the checkpoint holds " + describe(actual) + ", expected " + describe(expected);
        }
    }

    /**
     * A new session whose instances are restored from {@code states} (step states by key group) before any input;
     * its clock is not stamped until the next {@link ClockEvent}.
     *
     * @param error when not null, the restore fails with a message containing it
     */
    public record RestoreEvent(SortedMap<Integer, byte[]> states, String error) implements Event {

        /** Null when the restore went as this says ({@code actualError}: null when it succeeded), else how not. */
        public String mismatch(String actualError) {
            return errorMismatch("the restore", error, actualError);
        }
    }

    /** An output: what an OUTPUT frame carries. */
    public record Output(byte[] payload, Map<String, String> headers, long timestamp) {

        @Override
        public boolean equals(Object other) {
            return other instanceof Output that && timestamp == that.timestamp && headers.equals(that.headers)
                    && Arrays.equals(payload, that.payload);
        }

        @Override
        public int hashCode() {
            return Long.hashCode(timestamp) + 31 * headers.hashCode() + Arrays.hashCode(payload);
        }

        @Override
        public String toString() {
            return "{payload " + describe(payload) + ", headers " + new TreeMap<>(headers) + ", timestamp "
                    + timestamp + "}";
        }
    }

    /** What an input gives: its outputs in order, or (when {@code error} is not null) an error containing it. */
    public record Expected(List<Output> outputs, String error) {

        /**
         * Null when the input gave what this says ({@code actualError}: its error's message, null when it gave
         * outputs), else what differs.
         */
        public String mismatch(List<Output> actual, String actualError) {
            if (error != null) {
                if (actualError == null) {
                    return "gave " + actual + ", expected an error containing '" + error + "'";
                }
                return actualError.contains(error) ? null
                        : "failed with '" + actualError + "', expected an error containing '" + error + "'";
            }
            if (actualError != null) {
                return "failed with '" + actualError + "', expected " + outputs;
            }
            return actual.equals(outputs) ? null : "gave " + actual + ", expected " + outputs;
        }
    }

    private static String errorMismatch(String what, String expected, String actual) {
        if (expected == null) {
            return actual == null ? null : what + " failed: " + actual;
        }
        if (actual != null && actual.contains(expected)) {
            return null;
        }
        return what + (actual == null ? " succeeded" : " failed with '" + actual + "'")
                + ", expected an error containing '" + expected + "'";
    }

    /**
     * The state a worker returns for one key group of a one-step segment: the number of steps (1), the step
     * state's length and the step state (big-endian ints); nothing when the step holds nothing.
     */
    public static byte[] segmentState(byte[] stepState) {
        if (stepState.length == 0) {
            return stepState;
        }
        return ByteBuffer.allocate(8 + stepState.length).putInt(1).putInt(stepState.length).put(stepState).array();
    }

    /** The vectors of the file in this module's resources. */
    public static List<Vector> load() {
        try (InputStream in = BuiltInStepVectors.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is not on the class path beside "
                        + BuiltInStepVectors.class.getName());
            }
            return parse(JSON.readTree(in));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
    }

    private static List<Vector> parse(JsonNode file) {
        List<Vector> vectors = new ArrayList<>();
        for (JsonNode vector : required(file, "vectors")) {
            String name = required(vector, "name").textValue();
            try {
                vectors.add(vector(name, vector));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(RESOURCE + ", vector '" + name + "': " + e.getMessage(), e);
            }
        }
        return List.copyOf(vectors);
    }

    private static Vector vector(String name, JsonNode vector) {
        JsonNode step = required(vector, "step");
        List<Event> events = new ArrayList<>();
        for (JsonNode event : vector.path("events")) {
            events.add(event(event));
        }
        return new Vector(name, required(step, "name").textValue(), required(step, "type").textValue(),
                required(step, "config").textValue(), vector.path("open_error").textValue(), List.copyOf(events),
                Map.copyOf(strings(vector.path("known_drift"))));
    }

    private static Event event(JsonNode event) {
        if (event.has("clock")) {
            return new ClockEvent(event.get("clock").longValue());
        }
        if (event.has("record")) {
            JsonNode record = event.get("record");
            return new RecordEvent(payload(record), headers(record), record.path("timestamp").longValue(),
                    keyGroup(record), expected(event));
        }
        if (event.has("watermark")) {
            return new WatermarkEvent(event.get("watermark").longValue(), expected(event));
        }
        if (event.has("checkpoint")) {
            return new CheckpointEvent(states(event.get("checkpoint")));
        }
        if (event.has("restore")) {
            return new RestoreEvent(states(event.get("restore")), event.path("error").textValue());
        }
        throw new IllegalArgumentException("an event that is none of clock, record, watermark, checkpoint, restore: "
                + event);
    }

    private static Expected expected(JsonNode event) {
        if (event.has("error")) {
            return new Expected(List.of(), event.get("error").textValue());
        }
        List<Output> outputs = new ArrayList<>();
        for (JsonNode output : required(event, "outputs")) {
            outputs.add(new Output(payload(output), headers(output), required(output, "timestamp").longValue()));
        }
        return new Expected(List.copyOf(outputs), null);
    }

    private static byte[] payload(JsonNode record) {
        if (record.has("text")) {
            return record.get("text").textValue().getBytes(StandardCharsets.UTF_8);
        }
        return Base64.getDecoder().decode(required(record, "base64").textValue());
    }

    private static Map<String, String> headers(JsonNode record) {
        return strings(record.path("headers"));
    }

    /** An object of strings, in order (empty when missing). */
    private static Map<String, String> strings(JsonNode object) {
        Map<String, String> strings = new LinkedHashMap<>();
        object.properties().forEach(entry -> strings.put(entry.getKey(), entry.getValue().textValue()));
        return strings;
    }

    private static int keyGroup(JsonNode node) {
        return node.has("key_group") ? node.get("key_group").intValue() : KeyGroups.NONE;
    }

    private static SortedMap<Integer, byte[]> states(JsonNode list) {
        SortedMap<Integer, byte[]> states = new TreeMap<>();
        for (JsonNode state : list) {
            states.put(keyGroup(state), HEX.parseHex(required(state, "state_hex").textValue().replaceAll("\\s", "")));
        }
        return states;
    }

    private static JsonNode required(JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            throw new IllegalArgumentException("no " + field + " in " + node);
        }
        return value;
    }

    private static String describe(SortedMap<Integer, byte[]> states) {
        Map<String, String> described = new LinkedHashMap<>();
        states.forEach((group, state) -> described.put(group == KeyGroups.NONE ? "none" : group.toString(),
                HEX.formatHex(state)));
        return described.toString();
    }

    /** A payload as its text when it is UTF-8, else in base64. */
    private static String describe(byte[] payload) {
        try {
            return "'" + StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(payload)) + "'";
        } catch (CharacterCodingException notText) {
            return "base64 " + Base64.getEncoder().encodeToString(payload);
        }
    }
}
