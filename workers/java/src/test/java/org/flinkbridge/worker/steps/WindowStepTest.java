package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.StepHarness;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The built-in {@code window} step (docs/steps.md), on cells and timers, through the StepHarness. */
class WindowStepTest {

    /** The pipeline's key of every record here: the cells' and timers' key. */
    private static final byte[] K = "k".getBytes(StandardCharsets.UTF_8);

    private static StepHarness window(String config) throws Exception {
        return StepHarness.named("w", "window", config);
    }

    private static Record rec(String user, long timestamp, String value) {
        return new Record(("{\"user\":\"" + user + "\",\"v\":" + value + "}").getBytes(StandardCharsets.UTF_8),
                Map.of("h", "1"), timestamp);
    }

    private static String text(Record record) {
        return new String(record.payload(), StandardCharsets.UTF_8);
    }

    private static List<String> texts(List<Record> records) {
        return records.stream().map(WindowStepTest::text).toList();
    }

    private static String result(String key, long start, long end, String aggregate, long value) {
        return "{\"key\":\"" + key + "\",\"window_start\":" + start + ",\"window_end\":" + end + ",\"" + aggregate
                + "\":" + value + "}";
    }

    private static byte[] le(long value) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array();
    }

    @Test
    void tumblingCountsEmitPerKeyWhenTheWatermarkReachesTheEndInKeyOrder() throws Exception {
        try (StepHarness w = window("{\"key_json_field\":\"user\",\"size_ms\":10}")) {
            assertEquals(List.of(), w.process(K, rec("b", 7, "0")));
            w.process(K, rec("a", 1, "0"));
            w.process(K, rec("a", 5, "0"));
            w.process(K, rec("a", 12, "0"));
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 9),
                    new StepHarness.Timer(TimeDomain.EVENT_TIME, 19)), w.timers(K));

            assertEquals(List.of(), w.watermark(8));
            List<Record> fired = w.watermark(9);
            assertEquals(List.of(result("a", 0, 10, "count", 2), result("b", 0, 10, "count", 1)), texts(fired));
            assertEquals(Map.of("key", "a"), fired.get(0).headers());
            assertEquals(9, fired.get(0).timestamp());
            assertArrayEquals(le(9), w.value(K, "fired_until"));
            // What is left: the window at 10 of "a", its entry key the start (big-endian) then the key.
            SortedMap<byte[], byte[]> left = w.entries(K, "windows");
            assertEquals(1, left.size());
            assertArrayEquals(ByteBuffer.allocate(9).putLong(10).put((byte) 'a').array(), left.firstKey());
            assertArrayEquals(le(1), left.get(left.firstKey()));

            assertEquals(List.of(result("a", 10, 20, "count", 1)), texts(w.endInput()));
            assertEquals(0, w.entries(K, "windows").size());
        }
    }

    @Test
    void slidingSumsAddEachRecordToEveryWindowHoldingIt() throws Exception {
        try (StepHarness w = window("{\"key_header\":\"h\",\"size_ms\":10,\"slide_ms\":5,\"aggregate\":\"sum\","
                + "\"field\":\"v\"}")) {
            w.process(K, rec("x", 12, "3"));  // [5, 15) and [10, 20)
            w.process(K, rec("x", 7, "4"));   // [0, 10) and [5, 15)
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 9),
                    new StepHarness.Timer(TimeDomain.EVENT_TIME, 14),
                    new StepHarness.Timer(TimeDomain.EVENT_TIME, 19)), w.timers(K));
            assertEquals(List.of(result("1", 0, 10, "sum", 4)), texts(w.watermark(9)));
            assertEquals(List.of(result("1", 5, 15, "sum", 7)), texts(w.watermark(14)));
            assertEquals(List.of(result("1", 10, 20, "sum", 3)), texts(w.endInput()));
        }
    }

    @Test
    void minAndMaxKeepTheExtremes() throws Exception {
        for (String aggregate : List.of("min", "max")) {
            try (StepHarness w = window("{\"key_json_field\":\"user\",\"size_ms\":100,\"aggregate\":\"" + aggregate
                    + "\",\"field\":\"v\"}")) {
                w.process(K, rec("a", 1, "5"));
                w.process(K, rec("a", 2, "-2"));
                w.process(K, rec("a", 3, "9"));
                assertEquals(List.of(result("a", 0, 100, aggregate, aggregate.equals("min") ? -2 : 9)),
                        texts(w.endInput()));
            }
        }
    }

    /**
     * A window fires allowed_lateness_ms after its end; a record whose every window fired for its key is emitted as it
     * came with the header late, and one with a window still open adds to that one only.
     */
    @Test
    void allowedLatenessDelaysTheFiringAndLateRecordsAreEmittedMarked() throws Exception {
        try (StepHarness w = window("{\"key_json_field\":\"user\",\"size_ms\":10,\"slide_ms\":5,"
                + "\"allowed_lateness_ms\":5}")) {
            w.process(K, rec("a", 3, "0"));  // [-5, 5) fires at 9, [0, 10) at 14
            assertEquals(List.of(), w.watermark(8));
            assertEquals(List.of(result("a", -5, 5, "count", 1)), texts(w.watermark(9)));
            assertArrayEquals(le(9), w.value(K, "fired_until"));
            // [-5, 5) fired: this one adds to [0, 10) alone, and is no late record.
            assertEquals(List.of(), w.process(K, rec("a", 4, "0")));
            assertEquals(List.of(result("a", 0, 10, "count", 2)), texts(w.watermark(14)));

            // [0, 10) fired at 14, [5, 15) fires at 19: this one adds to [5, 15).
            assertEquals(List.of(), w.process(K, rec("a", 9, "0")));
            List<Record> lateOnly = w.process(K, rec("a", 2, "0"));  // [-5, 5) and [0, 10): both fired
            assertEquals(1, lateOnly.size());
            assertEquals(text(rec("a", 2, "0")), text(lateOnly.getFirst()));
            assertEquals(Map.of("h", "1", "late", "w"), lateOnly.getFirst().headers());
            assertEquals(2, lateOnly.getFirst().timestamp());
            assertEquals(List.of(result("a", 5, 15, "count", 1)), texts(w.watermark(19)));
            assertArrayEquals(le(19), w.value(K, "fired_until"));
        }
    }

    @Test
    void aCheckpointCarriesTheWindowsAndTheirTimers() throws Exception {
        StepHarness.Checkpoint saved;
        try (StepHarness w = window("{\"key_json_field\":\"user\",\"size_ms\":10}")) {
            w.process(K, rec("a", 1, "0"));
            saved = w.snapshot();
        }
        try (StepHarness w = window("{\"key_json_field\":\"user\",\"size_ms\":10}")) {
            w.restore(saved);
            w.process(K, rec("a", 2, "0"));
            assertEquals(List.of(result("a", 0, 10, "count", 2)), texts(w.watermark(20)));
        }
    }

    @Test
    void recordsItCannotAggregateFailNamingWhy() throws Exception {
        String sum = "{\"key_json_field\":\"user\",\"size_ms\":10,\"aggregate\":\"sum\",\"field\":\"v\"}";
        assertFails(sum, List.of(new Record("{\"v\":1}".getBytes(StandardCharsets.UTF_8), Map.of(), 1)),
                "the record has no key to window by");
        assertFails(sum, List.of(new Record("{\"user\":\"a\"}".getBytes(StandardCharsets.UTF_8), Map.of(), 1)),
                "the record has no field 'v'");
        assertFails(sum, List.of(rec("a", 1, "1.5")), "field 'v' of the record is not an integer (1.5)");
        assertFails(sum, List.of(rec("a", 1, "\"3\"")), "field 'v' of the record is not an integer (3)");
        assertFails(sum, List.of(rec("a", 1, "9223372036854775808")),
                "field 'v' of the record is 9223372036854775808, which does not fit 64 bits");
        assertFails(sum, List.of(rec("a", 1, "9223372036854775807"), rec("a", 2, "1")),
                "the sum of key 'a' in the window starting at 0 overflows 64 bits");
    }

    private static void assertFails(String config, List<Record> records, String start) throws Exception {
        try (StepHarness w = window(config)) {
            for (int i = 0; i < records.size() - 1; i++) {
                w.process(K, records.get(i));
            }
            IOException failed = assertThrows(IOException.class, () -> w.process(K, records.getLast()));
            assertTrue(failed.getMessage().startsWith(start), failed.getMessage());
        }
    }

    @Test
    void configErrorsNameTheField() {
        assertConfig("{\"size_ms\":10}", "step 'w': config needs key_header or key_json_field");
        assertConfig("{\"key_header\":\"u\"}", "step 'w': config size_ms must be a whole number >= 1");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":0}", "step 'w': config size_ms must be a whole number >= 1");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"slide_ms\":11}",
                "step 'w': config slide_ms must be at most size_ms (10), not 11");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"slide_ms\":0}",
                "step 'w': config slide_ms must be a whole number >= 1");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"allowed_lateness_ms\":-1}",
                "step 'w': config allowed_lateness_ms must be a whole number >= 0");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"avg\"}",
                "step 'w': config aggregate must be one of count, sum, min, max or a user class (a name with a dot), "
                        + "not \"avg\"");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"max\"}",
                "step 'w': config field is required for aggregate max");
    }

    private static void assertConfig(String config, String start) {
        Exception refused = assertThrows(IllegalArgumentException.class, () -> window(config));
        assertTrue(refused.getMessage().startsWith(start), refused.getMessage());
    }

    private static final String AVERAGE = TestAggregates.Average.class.getName();
    private static final String TRACE = TestAggregates.Trace.class.getName();
    private static final String FAILING = TestAggregates.Failing.class.getName();

    private static StepHarness userWindow(String aggregate, String more) throws Exception {
        return window("{\"key_json_field\":\"user\",\"size_ms\":10" + more + ",\"aggregate\":\"" + aggregate + "\"}");
    }

    /** A user aggregate's output: the result, as JSON, in the field result. */
    private static String userResult(String key, long start, long end, String resultJson) {
        return "{\"key\":\"" + key + "\",\"window_start\":" + start + ",\"window_end\":" + end + ",\"result\":"
                + resultJson + "}";
    }

    /** An Average accumulator: the sum and the count, each an i64 big-endian. */
    private static byte[] sums(long sum, long count) {
        return ByteBuffer.allocate(16).putLong(sum).putLong(count).array();
    }

    /** A pane's entry key: its start (big-endian) then K. */
    private static byte[] pane(long start, String key) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + k.length).putLong(start).put(k).array();
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** The map cell windows of the pipeline key K, as (entry key, value) pairs in order. */
    private static List<Map.Entry<byte[], byte[]>> cell(StepHarness w) {
        return List.copyOf(w.entries(K, "windows").entrySet());
    }

    private static void assertCell(List<Map.Entry<byte[], byte[]>> expected, StepHarness w) {
        List<Map.Entry<byte[], byte[]>> actual = cell(w);
        assertEquals(expected.size(), actual.size(), "entries in cell windows");
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i).getKey(), actual.get(i).getKey(), "entry key " + i);
            assertArrayEquals(expected.get(i).getValue(), actual.get(i).getValue(), "entry value " + i);
        }
    }

    /**
     * Tumbling windows with a user aggregate: one pane per window, so each window's accumulator is its pane's, never
     * merged; per key, in key order, the result in the field result.
     */
    @Test
    void aUserAggregateOverTumblingWindowsKeepsOneAccumulatorPerWindowAndNeverMerges() throws Exception {
        for (String aggregate : List.of(AVERAGE, TRACE)) {
            try (StepHarness w = userWindow(aggregate, "")) {
                w.process(K, rec("a", 1, "2"));
                w.process(K, rec("b", 5, "1"));
                w.process(K, rec("a", 3, "4"));
                w.process(K, rec("a", 12, "3"));
                assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 9),
                        new StepHarness.Timer(TimeDomain.EVENT_TIME, 19)), w.timers(K));
                boolean average = aggregate.equals(AVERAGE);
                assertCell(List.of(Map.entry(pane(0, "a"), average ? sums(6, 2) : utf8("2,4")),
                        Map.entry(pane(0, "b"), average ? sums(1, 1) : utf8("1")),
                        Map.entry(pane(10, "a"), average ? sums(3, 1) : utf8("3"))), w);
                List<Record> fired = w.watermark(9);
                assertEquals(average
                        ? List.of(userResult("a", 0, 10, "3.0"), userResult("b", 0, 10, "1.0"))
                        : List.of(userResult("a", 0, 10, "{\"trace\":\"2,4\"}"),
                                userResult("b", 0, 10, "{\"trace\":\"1\"}")), texts(fired));
                assertEquals(Map.of("key", "a"), fired.get(0).headers());
                assertEquals(9, fired.get(0).timestamp());
                assertArrayEquals(le(9), w.value(K, "fired_until"));
                assertCell(List.of(Map.entry(pane(10, "a"), average ? sums(3, 1) : utf8("3"))), w);
                assertEquals(List.of(average ? userResult("a", 10, 20, "3.0")
                        : userResult("a", 10, 20, "{\"trace\":\"3\"}")), texts(w.endInput()));
                assertEquals(0, w.entries(K, "windows").size());
            }
        }
    }

    /**
     * Sliding windows with a user aggregate: a record is added once, to its pane of gcd(size_ms, slide_ms) ms; a window
     * fires with its panes' accumulators merged in order (Trace shows the merges), and a pane is dropped once the last
     * window holding it fired.
     */
    @Test
    void aUserAggregateOverSlidingWindowsMergesItsPanesAndDropsAPaneAfterItsLastWindow() throws Exception {
        for (String aggregate : List.of(AVERAGE, TRACE)) {
            boolean average = aggregate.equals(AVERAGE);
            try (StepHarness w = userWindow(aggregate, ",\"slide_ms\":5")) {
                w.process(K, rec("a", 1, "1"));   // pane 0: [-5, 5) and [0, 10)
                w.process(K, rec("a", 7, "2"));   // pane 5: [0, 10) and [5, 15)
                w.process(K, rec("a", 8, "3"));   // pane 5
                w.process(K, rec("a", 12, "7"));  // pane 10: [5, 15) and [10, 20)
                assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 4),
                        new StepHarness.Timer(TimeDomain.EVENT_TIME, 9),
                        new StepHarness.Timer(TimeDomain.EVENT_TIME, 14),
                        new StepHarness.Timer(TimeDomain.EVENT_TIME, 19)), w.timers(K));
                assertCell(List.of(Map.entry(pane(0, "a"), average ? sums(1, 1) : utf8("1")),
                        Map.entry(pane(5, "a"), average ? sums(5, 2) : utf8("2,3")),
                        Map.entry(pane(10, "a"), average ? sums(7, 1) : utf8("7"))), w);

                assertEquals(List.of(userResult("a", -5, 5, average ? "1.0" : "{\"trace\":\"1\"}")),
                        texts(w.watermark(4)));
                assertEquals(3, cell(w).size(), "pane 0 is in [0, 10) too, which has not fired");
                assertEquals(List.of(userResult("a", 0, 10, average ? "2.0" : "{\"trace\":\"[1|2,3]\"}")),
                        texts(w.watermark(9)));
                assertCell(List.of(Map.entry(pane(5, "a"), average ? sums(5, 2) : utf8("2,3")),
                        Map.entry(pane(10, "a"), average ? sums(7, 1) : utf8("7"))), w);
                assertEquals(List.of(userResult("a", 5, 15, average ? "4.0" : "{\"trace\":\"[2,3|7]\"}")),
                        texts(w.watermark(14)));
                assertCell(List.of(Map.entry(pane(10, "a"), average ? sums(7, 1) : utf8("7"))), w);
                assertEquals(List.of(userResult("a", 10, 20, average ? "7.0" : "{\"trace\":\"7\"}")),
                        texts(w.endInput()));
                assertEquals(0, cell(w).size());
            }
        }
    }

    /** Panes are gcd(size_ms, slide_ms) long: with size 10 and slide 4, 2 ms; a window of 5 panes merges them all. */
    @Test
    void aPaneIsTheGreatestCommonDivisorOfSizeAndSlide() throws Exception {
        try (StepHarness w = userWindow(TRACE, ",\"slide_ms\":4")) {
            for (long t = 0; t < 10; t += 3) {
                w.process(K, rec("a", t, Long.toString(t)));  // panes 0, 2, 6, 8
            }
            assertCell(List.of(Map.entry(pane(0, "a"), utf8("0")), Map.entry(pane(2, "a"), utf8("3")),
                    Map.entry(pane(6, "a"), utf8("6")), Map.entry(pane(8, "a"), utf8("9"))), w);
            List<String> fired = texts(w.watermark(9));
            assertEquals(List.of(userResult("a", -8, 2, "{\"trace\":\"0\"}"),
                    userResult("a", -4, 6, "{\"trace\":\"[0|3]\"}"),
                    userResult("a", 0, 10, "{\"trace\":\"[[[0|3]|6]|9]\"}")), fired);
            // Panes 0 and 2 were in no later window than [0, 10); 6 is in [4, 14) too, 8 in [4, 14) and [8, 18).
            assertCell(List.of(Map.entry(pane(6, "a"), utf8("6")), Map.entry(pane(8, "a"), utf8("9"))), w);
            assertEquals(List.of(userResult("a", 4, 14, "{\"trace\":\"[6|9]\"}"),
                    userResult("a", 8, 18, "{\"trace\":\"9\"}")), texts(w.endInput()));
        }
    }

    @Test
    void aUserAggregatesAccumulatorsComeBackFromACheckpoint() throws Exception {
        StepHarness.Checkpoint saved;
        try (StepHarness w = userWindow(TRACE, ",\"slide_ms\":5")) {
            w.process(K, rec("a", 1, "1"));
            w.process(K, rec("a", 6, "2"));
            assertEquals(List.of(userResult("a", -5, 5, "{\"trace\":\"1\"}")), texts(w.watermark(4)));
            saved = w.snapshot();
        }
        try (StepHarness w = userWindow(TRACE, ",\"slide_ms\":5")) {
            w.restore(saved);
            assertCell(List.of(Map.entry(pane(0, "a"), utf8("1")), Map.entry(pane(5, "a"), utf8("2"))), w);
            assertArrayEquals(le(4), w.value(K, "fired_until"));
            w.process(K, rec("a", 8, "3"));
            assertEquals(List.of(userResult("a", 0, 10, "{\"trace\":\"[1|2,3]\"}")), texts(w.watermark(9)));
            assertEquals(List.of(userResult("a", 5, 15, "{\"trace\":\"2,3\"}")), texts(w.endInput()));
        }
    }

    @Test
    void aRecordWhoseWindowsAllFiredIsLateWithAUserAggregateToo() throws Exception {
        try (StepHarness w = userWindow(AVERAGE, ",\"slide_ms\":5,\"allowed_lateness_ms\":5")) {
            w.process(K, rec("a", 3, "4"));  // [-5, 5) fires at 9, [0, 10) at 14
            assertEquals(List.of(userResult("a", -5, 5, "4.0")), texts(w.watermark(9)));
            assertEquals(List.of(), w.process(K, rec("a", 4, "2")), "[0, 10) is open");
            assertEquals(List.of(userResult("a", 0, 10, "3.0")), texts(w.watermark(14)));
            assertEquals(0, cell(w).size());
            List<Record> late = w.process(K, rec("a", 2, "8"));
            assertEquals(List.of(text(rec("a", 2, "8"))), texts(late));
            assertEquals(Map.of("h", "1", "late", "w"), late.getFirst().headers());
            assertEquals(2, late.getFirst().timestamp());
            assertEquals(0, cell(w).size(), "a late record is added to no pane");
            assertEquals(List.of(), w.timers(K));
        }
    }

    @Test
    void aUserAggregatesFailureFailsTheRecordOrTheFiringNamingTheStepAndTheClass() throws Exception {
        try (StepHarness w = userWindow(FAILING, "")) {
            IOException failed = assertThrows(IOException.class, () -> w.process(K, rec("a", 1, "13")));
            assertEquals("step 'w': aggregate " + FAILING + " failed in add(): java.lang.IllegalStateException: told "
                    + "to fail on 13", failed.getMessage());
        }
        try (StepHarness w = userWindow(FAILING, ",\"slide_ms\":5")) {
            w.process(K, rec("a", 1, "1"));
            w.process(K, rec("a", 6, "2"));
            IOException failed = assertThrows(IOException.class, () -> w.watermark(9));
            assertEquals("step 'w': aggregate " + FAILING + " failed in merge(): java.lang.IllegalStateException: "
                    + "told not to merge", failed.getMessage());
        }
        try (StepHarness w = userWindow(FAILING, "")) {
            w.process(K, rec("a", 1, "99"));
            IOException failed = assertThrows(IOException.class, () -> w.watermark(9));
            assertEquals("step 'w': aggregate " + FAILING + " failed in result(): java.lang.IllegalStateException: "
                    + "told to fail on 99", failed.getMessage());
        }
        try (StepHarness w = userWindow(FAILING, "")) {
            w.process(K, rec("a", 1, "0"));
            IOException failed = assertThrows(IOException.class, () -> w.watermark(9));
            assertTrue(failed.getMessage().startsWith("step 'w': aggregate " + FAILING + ": result() returned a "
                    + "java.lang.Object, which cannot be written as JSON: No serializer found"), failed.getMessage());
        }
        String forgetful = TestAggregates.Forgetful.class.getName();
        try (StepHarness w = userWindow(forgetful, "")) {
            IOException failed = assertThrows(IOException.class, () -> w.process(K, rec("a", 1, "1")));
            assertEquals("step 'w': aggregate " + forgetful + ": add() returned null, not an accumulator (bytes)",
                    failed.getMessage());
        }
    }

    @Test
    void aUserAggregatesConfigErrorsNameTheStepAndTheClass() {
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"no.such.Aggregate\"}",
                "step 'w': aggregate class no.such.Aggregate is not on the worker's classpath");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"" + AVERAGE + "\",\"field\":\"v\"}",
                "step 'w': config field is not used with a user aggregate (" + AVERAGE + "), whose add() is given "
                        + "the whole record");
        // A class without the three methods of a WindowAggregate.
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"" + UppercaseStep.class.getName() + "\"}",
                "step 'w': aggregate class " + UppercaseStep.class.getName() + " does not implement "
                        + "org.flinkbridge.worker.sdk.WindowAggregate");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"" + TestAggregates.class.getName() + "\"}",
                "step 'w': aggregate class " + TestAggregates.class.getName() + " does not implement");
    }

    @Test
    void itKeepsNoWholeInstanceState() throws Exception {
        try (StepHarness w = window("{\"key_json_field\":\"user\",\"size_ms\":10}")) {
            w.process(K, rec("a", 1, "0"));
            assertEquals(Map.of(), w.checkpoint());
            assertNull(w.value(K, "fired_until"));
        }
    }
}
