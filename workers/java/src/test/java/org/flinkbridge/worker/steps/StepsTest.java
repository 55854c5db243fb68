package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StepsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    static Step step(String type, String configJson) throws IOException {
        return step(type, configJson, new SessionClock());
    }

    static Step step(String type, String configJson, SessionClock clock) throws IOException {
        JsonNode config = JSON.readTree(configJson);
        return StepFactory.create(type, new StepContext() {
            @Override
            public String stepName() {
                return "s-" + type;
            }

            @Override
            public JsonNode config() {
                return config;
            }

            @Override
            public String sessionName() {
                return "test session";
            }

            @Override
            public long currentTimeMillis() {
                return clock.millis();
            }
        });
    }

    static Record json(String payload, long timestamp, Map<String, String> headers) {
        return new Record(payload.getBytes(StandardCharsets.UTF_8), headers, timestamp);
    }

    static Record json(String payload, long timestamp) {
        return json(payload, timestamp, Map.of());
    }

    /** What {@code step} emits processing {@code records} in order, in a list a test may add to. */
    static List<Record> process(Step step, Record... records) throws Exception {
        List<Record> out = new ArrayList<>();
        for (Record record : records) {
            step.process(record, out::add);
        }
        return out;
    }

    static String text(Record record) {
        return new String(record.payload(), StandardCharsets.UTF_8);
    }

    @Test
    void appendFieldAddsTheField() throws Exception {
        List<Record> out = new ArrayList<>();
        step("append_field", "{}").process(json("{\"a\":1}", 5, Map.of("h", "v")), out::add);
        assertEquals("{\"a\":1,\"processed\":true}", text(out.getFirst()));
        assertEquals(5, out.getFirst().timestamp());
        assertEquals(Map.of("h", "v"), out.getFirst().headers());

        out.clear();
        step("append_field", "{\"field\":\"n\",\"value\":[1,2]}").process(json("{}", 0), out::add);
        assertEquals("{\"n\":[1,2]}", text(out.getFirst()));
    }

    @Test
    void appendFieldRefusesWhatIsNotAJsonObject() throws Exception {
        Step append = step("append_field", "{}");
        IOException array = assertThrows(IOException.class, () -> append.process(json("[1]", 0), r -> { }));
        assertEquals("step 's-append_field' (append_field): the payload is not a JSON object but ARRAY",
                array.getMessage());
        IOException garbage = assertThrows(IOException.class, () -> append.process(json("nope", 0), r -> { }));
        assertTrue(garbage.getMessage().startsWith("step 's-append_field' (append_field): the payload is not JSON"),
                garbage.getMessage());
    }

    @Test
    void batchClosesByCountAndAtTheEndOfInput() throws Exception {
        Step batch = step("batch", "{\"max_count\":3,\"max_wait_ms\":600000}");
        List<Record> out = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            batch.process(json("{\"i\":" + i + "}", 100 + i, Map.of("first", "h" + i)), out::add);
        }
        batch.onWatermark(1_000, out::add);
        assertEquals(2, out.size(), "a young batch stays open on an ordinary watermark");
        batch.onWatermark(Long.MAX_VALUE, out::add);

        assertEquals(List.of("[{\"i\":0},{\"i\":1},{\"i\":2}]", "[{\"i\":3},{\"i\":4},{\"i\":5}]", "[{\"i\":6}]"),
                out.stream().map(StepsTest::text).toList());
        assertEquals(Map.of("first", "h0", "batch_size", "3"), out.get(0).headers());
        assertEquals(Map.of("first", "h6", "batch_size", "1"), out.get(2).headers());
        assertEquals(102, out.get(0).timestamp());
    }

    @Test
    void batchClosesByAgeOnTheStampedClockAlone() throws Exception {
        SessionClock clock = new SessionClock();
        clock.stamp(1_000);
        Step batch = step("batch", "{\"max_count\":100,\"max_wait_ms\":10}", clock);
        List<Record> out = new ArrayList<>();
        batch.process(json("\"a\"", 1), out::add);
        Thread.sleep(20);
        batch.onWatermark(2, out::add);
        assertEquals(List.of(), out, "the bridge's clock has not moved, however long the worker waited");
        clock.stamp(1_009);
        batch.process(json("\"b\"", 3), out::add);
        assertEquals(List.of(), out);
        clock.stamp(1_010);
        batch.onWatermark(4, out::add);
        assertEquals(List.of("[\"a\",\"b\"]"), out.stream().map(StepsTest::text).toList());
    }

    @Test
    void batchStateSurvivesARestart() throws Exception {
        String config = "{\"max_count\":4,\"max_wait_ms\":600000}";
        Step before = step("batch", config);
        List<Record> out = process(before, json("{\"i\":0}", 1, Map.of("k", "v")), json("not json", 2));
        byte[] state = before.snapshotState();

        Step after = step("batch", config);
        after.restoreState(state);
        after.process(json("{\"i\":2}", 3), out::add);
        after.process(json("{\"i\":3}", 4), out::add);

        assertEquals(List.of("[{\"i\":0},\"not json\",{\"i\":2},{\"i\":3}]"), out.stream().map(StepsTest::text).toList());
        assertEquals(Map.of("k", "v", "batch_size", "4"), out.getFirst().headers());
        assertArrayEquals(new byte[] {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                step("batch", config).snapshotState(), "empty batch: version, opening time, no records");
        IOException corrupt = assertThrows(IOException.class, () -> after.restoreState(new byte[] {2, 0, 0}));
        assertEquals("batch state ends early", corrupt.getMessage());
        IOException version = assertThrows(IOException.class, () -> after.restoreState(new byte[] {9}));
        assertEquals("batch state version 9 is not 2", version.getMessage());
    }

    @Test
    void filterKeepsMatchingRecords() throws Exception {
        List<Record> out = new ArrayList<>();
        Step byField = step("filter", "{\"json_field\":\"kind\",\"equals\":\"a\"}");
        for (String payload : List.of("{\"kind\":\"a\"}", "{\"kind\":\"b\"}", "{\"other\":1}", "[]", "{\"kind\":\"a\",\"n\":1}")) {
            byField.process(json(payload, 0), out::add);
        }
        assertEquals(List.of("{\"kind\":\"a\"}", "{\"kind\":\"a\",\"n\":1}"), out.stream().map(StepsTest::text).toList());

        out.clear();
        Step byHeader = step("filter", "{\"header\":\"tenant\",\"equals\":\"x\",\"negate\":true}");
        byHeader.process(json("1", 0, Map.of("tenant", "x")), out::add);
        byHeader.process(json("2", 0, Map.of("tenant", "y")), out::add);
        byHeader.process(json("3", 0), out::add);
        assertEquals(List.of("2", "3"), out.stream().map(StepsTest::text).toList());

        IllegalArgumentException both = assertThrows(IllegalArgumentException.class,
                () -> step("filter", "{\"header\":\"a\",\"json_field\":\"b\",\"equals\":\"c\"}"));
        assertEquals("step 's-filter': give header or json_field, not both", both.getMessage());
        IllegalArgumentException noEquals = assertThrows(IllegalArgumentException.class,
                () -> step("filter", "{\"header\":\"a\"}"));
        assertTrue(noEquals.getMessage().contains("config equals must be a string"), noEquals.getMessage());
    }

    @Test
    void countEmitsClosedWindowsInOrder() throws Exception {
        Step count = step("count", "{\"window_ms\":1000,\"key_json_field\":\"k\"}");
        List<Record> out = process(count, json("{\"k\":\"b\"}", 100), json("{\"k\":\"a\"}", 200),
                json("{\"k\":\"a\"}", 999), json("{\"k\":\"a\"}", 1000));
        assertEquals(List.of(), out);

        count.onWatermark(999, out::add);
        assertEquals(List.of(), out, "the window [0,1000) is still open at 999");
        count.onWatermark(1000, out::add);
        assertEquals(List.of("{\"key\":\"a\",\"window_start\":0,\"window_end\":1000,\"count\":2}",
                "{\"key\":\"b\",\"window_start\":0,\"window_end\":1000,\"count\":1}"),
                out.stream().map(StepsTest::text).toList());
        assertEquals(999, out.getFirst().timestamp());
        assertEquals(Map.of("key", "a"), out.getFirst().headers());

        byte[] state = count.snapshotState();
        Step restored = step("count", "{\"window_ms\":1000,\"key_json_field\":\"k\"}");
        restored.restoreState(state);
        out.clear();
        restored.onWatermark(Long.MAX_VALUE, out::add);
        assertEquals(List.of("{\"key\":\"a\",\"window_start\":1000,\"window_end\":2000,\"count\":1}"),
                out.stream().map(StepsTest::text).toList());
        assertThrows(IllegalArgumentException.class, () -> step("count", "{}"));
    }

    /** Keys and headers of a megabyte: state strings are not limited to writeUTF's 64 KiB. */
    @Test
    void aKeyAndAHeaderOfAMegabyteSurviveARestart() throws Exception {
        String huge = "k".repeat(1 << 20);
        Step count = step("running_count", "{\"key_header\":\"id\"}");
        List<Record> out = new ArrayList<>();
        count.process(json("{}", 1, Map.of("id", huge)), out::add);
        Step restoredCount = step("running_count", "{\"key_header\":\"id\"}");
        restoredCount.restoreState(count.snapshotState());
        out.clear();
        restoredCount.process(json("{}", 2, Map.of("id", huge)), out::add);
        assertEquals(2, JSON.readTree(out.getFirst().payload()).get("count").asInt());

        String config = "{\"max_count\":2,\"max_wait_ms\":600000}";
        Step batch = step("batch", config);
        batch.process(json("{\"i\":0}", 1, Map.of(huge, huge)), out::add);
        Step restoredBatch = step("batch", config);
        restoredBatch.restoreState(batch.snapshotState());
        out.clear();
        restoredBatch.process(json("{\"i\":1}", 2), out::add);
        assertEquals(huge, out.getFirst().headers().get(huge));
    }

    @Test
    void runningCountCountsPerKeyAndContinuesFromItsState() throws Exception {
        Step count = step("running_count", "{\"key_json_field\":\"k\"}");
        List<Record> out = process(count, json("{\"k\":\"a\"}", 1), json("{\"k\":\"b\"}", 2), json("{\"k\":\"a\"}", 3));
        assertEquals(List.of("{\"key\":\"a\",\"count\":1}", "{\"key\":\"b\",\"count\":1}",
                "{\"key\":\"a\",\"count\":2}"), out.stream().map(StepsTest::text).toList());
        assertEquals(3, out.getLast().timestamp());
        assertEquals(Map.of("key", "a"), out.getLast().headers());

        Step restored = step("running_count", "{\"key_json_field\":\"k\"}");
        restored.restoreState(count.snapshotState());
        out.clear();
        restored.process(json("{\"k\":\"a\"}", 4), out::add);
        assertEquals(List.of("{\"key\":\"a\",\"count\":3}"), out.stream().map(StepsTest::text).toList());
        assertEquals(0, step("running_count", "{\"key_header\":\"k\"}").snapshotState().length,
                "no counts, no state");
        IOException keyless = assertThrows(IOException.class, () -> restored.process(json("{}", 5), out::add));
        assertEquals("the record has no key to count by", keyless.getMessage());
        assertThrows(IllegalArgumentException.class, () -> step("running_count", "{}"));
    }

    @Test
    void chainFeedsWatermarkOutputsToTheNextStepFirst() throws Exception {
        Step chain = new SegmentChain(List.of(
                step("batch", "{\"max_count\":10,\"max_wait_ms\":600000}"),
                step("count", "{\"window_ms\":1000}")));
        List<Record> out = process(chain, json("{}", 10), json("{}", 20));
        chain.onWatermark(Long.MAX_VALUE, out::add);
        assertEquals(List.of("{\"key\":\"\",\"window_start\":0,\"window_end\":1000,\"count\":1}"),
                out.stream().map(StepsTest::text).toList(), "the batch reached the count before its watermark");

        byte[] state = chain.snapshotState();
        Step other = new SegmentChain(List.of(step("append_field", "{}")));
        IOException mismatch = assertThrows(IOException.class, () -> other.restoreState(state));
        assertTrue(mismatch.getMessage().contains("holds 2 step states, but the segment has 1 steps"),
                mismatch.getMessage());
    }

    @Test
    void userSegmentsLoadByClassName() throws Exception {
        List<Record> out = new ArrayList<>();
        step(UppercaseStep.class.getName(), "{}").process(json("abc", 0), out::add);
        assertEquals("ABC", text(out.getFirst()));
    }

    @Test
    void badTypesAreNamed() {
        assertEquals("step 's-nope' has unknown type 'nope': built-in types are append_field, batch, filter, count, running_count, window; "
                        + "a user step is named by its fully qualified class name (with dots)",
                assertThrows(IllegalArgumentException.class, () -> step("nope", "{}")).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> step("", "{}")).getMessage()
                .startsWith("step 's-' has no type, so the worker would serve it with a segment of its own"));
        assertEquals("step 's-com.example.Missing': class com.example.Missing is not on the worker's classpath",
                assertThrows(IllegalArgumentException.class, () -> step("com.example.Missing", "{}")).getMessage());
        assertEquals("step 's-java.lang.String': class java.lang.String does not implement "
                        + "org.flinkbridge.worker.sdk.Step",
                assertThrows(IllegalArgumentException.class, () -> step("java.lang.String", "{}")).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> step("batch", "{\"max_count\":\"ten\"}")).getMessage()
                .contains("config max_count must be a whole number >= 1"));
    }

    /** Naming a class that is no step must not run its static code in the worker. */
    @Test
    void aClassThatIsNoStepIsRefusedWithoutBeingInitialised() {
        String name = StepsTest.class.getName() + "$NotAStep";
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> step(name, "{}"));

        assertEquals("step 's-" + name + "': class " + name + " does not implement org.flinkbridge.worker.sdk.Step",
                refused.getMessage());
        assertEquals(null, System.getProperty(NotAStep.INITIALISED), "the class's static initialiser ran");
    }

    /** Marks in a system property that its static initialiser ran. */
    static final class NotAStep {
        static final String INITIALISED = "flink-bridge.test.not-a-step-initialised";

        static {
            System.setProperty(INITIALISED, "yes");
        }
    }
}
