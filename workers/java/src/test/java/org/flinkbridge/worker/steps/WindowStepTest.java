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
                "step 'w': config aggregate must be one of count, sum, min, max");
        assertConfig("{\"key_header\":\"u\",\"size_ms\":10,\"aggregate\":\"max\"}",
                "step 'w': config field is required for aggregate max");
    }

    private static void assertConfig(String config, String start) {
        Exception refused = assertThrows(IllegalArgumentException.class, () -> window(config));
        assertTrue(refused.getMessage().startsWith(start), refused.getMessage());
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
